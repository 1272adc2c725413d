"""styletransfer: neural style transfer with interchangeable style losses and AdaIN.

No work happens at import: networks are built only when asked for.
"""

from .api import adain_files, magenta_files, stylize_files
from .encoder import VGG19_LAYERS, EncoderSpec, VGGEncoder
from .errors import StyleTransferError
from .adain import AdaINConfig, AdaINStylizer, StyleStatistics
from .imageio import load_image, save_image
from .losses import STYLE_LOSSES, build_style_loss
from .optimize import StylizeConfig, StylizeResult, stylize
from .weights import load_encoder

__version__ = "0.1.0"  # the one source of the version (pyproject.toml reads it)
DISTRIBUTION = "styletransfer-lab"  # the name on the package index; the import name is styletransfer

__all__ = [
    "VGG19_LAYERS", "EncoderSpec", "VGGEncoder", "StyleTransferError", "load_image", "save_image",
    "STYLE_LOSSES", "build_style_loss", "StylizeConfig", "StylizeResult", "stylize", "stylize_files",
    "load_encoder", "__version__", "AdaINConfig", "AdaINStylizer", "StyleStatistics", "adain_files",
    "magenta_files",
]
