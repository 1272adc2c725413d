"""AdaIN (Huang & Belongie 2017): encoder to relu4_1, adaptive instance normalization, decoder.

* :mod:`.functional`: the formulas (μ, σ, AdaIN, AdaIN with α as an affine map);
* :mod:`.decoder`: the decoder (pytorch-AdaIN's layout), its files, and the encoder–decoder pair;
* :mod:`.regions`: style mixing and a mask's two regions;
* :mod:`.stylizer`: inference, the one place AdaIN is applied to images;
* :mod:`.losses`: the training losses.
"""

from .decoder import DECODER_LAYOUT, DECODER_PLAN, AdaINModel, Decoder, load_decoder, save_decoder
from .functional import ADAIN_EPS, ADAIN_LAYER, ADAIN_STYLE_LAYERS, adain, adain_affine, mean_std
from .regions import StyleStatistics
from .stylizer import AdaINConfig, AdaINStylizer

__all__ = ["ADAIN_EPS", "ADAIN_LAYER", "ADAIN_STYLE_LAYERS", "DECODER_LAYOUT", "DECODER_PLAN", "AdaINConfig",
           "AdaINModel", "AdaINStylizer", "Decoder", "StyleStatistics", "adain", "adain_affine", "load_decoder",
           "mean_std", "save_decoder"]
