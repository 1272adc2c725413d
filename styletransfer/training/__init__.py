"""Training an AdaIN decoder (``styletransfer train``), split by job:

* :mod:`.config`: the run's settings, their defaults and checks, stored in every checkpoint;
* :mod:`.loop`: the resumable, distributed training loop (``train``, ``Trainer``);
* :mod:`.evaluation`: held-out losses of a decoder;
* :mod:`.signals`: SIGINT/SIGTERM as a clean stop after the current step.

The losses themselves are AdaIN's and live with it, in :mod:`styletransfer.adain.losses`.
"""

from .config import TrainConfig, load_run_config
from .evaluation import evaluate_decoder
from .loop import Trainer, TrainResult, learning_rate, train

__all__ = ["TrainConfig", "TrainResult", "Trainer", "evaluate_decoder", "learning_rate", "load_run_config", "train"]
