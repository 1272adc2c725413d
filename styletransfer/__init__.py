"""styletransfer: neural style transfer with interchangeable style losses and AdaIN.

No work happens at import: networks are built only when asked for.
"""

from .adain import AdaINConfig, AdaINStylizer, StyleStatistics
from .api import FeedforwardRun, RunOptions, adain_files, cin_files, feedforward_files, magenta_files, stylize_files, wct_files
from .encoder import VGG19_LAYERS, EncoderSpec, VGGEncoder
from .errors import StyleTransferError
from .imageio import load_image, save_image
from .losses import STYLE_LOSSES, build_style_loss
from .methods import METHODS, Method
from .optimize import StylizeConfig, StylizeResult, stylize
from .realtime import Networks, Stylizer
from .weights import load_encoder

__version__ = "0.1.0"  # the one source of the version (pyproject.toml reads it)
DISTRIBUTION = "styletransfer-lab"  # the name on the package index; the import name is styletransfer

__all__ = [
    "VGG19_LAYERS", "EncoderSpec", "VGGEncoder", "StyleTransferError", "load_image", "save_image",
    "STYLE_LOSSES", "build_style_loss", "StylizeConfig", "StylizeResult", "stylize", "stylize_files",
    "load_encoder", "__version__", "AdaINConfig", "AdaINStylizer", "StyleStatistics", "adain_files",
    "magenta_files", "cin_files", "wct_files", "feedforward_files", "FeedforwardRun", "RunOptions", "Networks",
    "Stylizer", "METHODS", "Method",
]
