"""Stylise a whole dataset (``styletransfer stylize-dataset``): the Stylized-ImageNet recipe,
resumable, batched, sharded over processes and machines. See docs/DATASETS.md."""

from .plan import DatasetConfig
from .run import DatasetRun, stylize_dataset

__all__ = ["DatasetConfig", "DatasetRun", "stylize_dataset"]
