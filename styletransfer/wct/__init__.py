"""WCT (Li et al. 2017, "Universal style transfer via feature transforms"), single level: encoder
to relu4_1, whitening and colouring with the style's mean and covariance, the AdaIN decoder.

* :mod:`.functional`: the formulas (moments, whitening and colouring matrices, WCT with α as an
  affine map of the feature vectors);
* :mod:`.stylizer`: inference, the one place WCT is applied to images (style mixing, a mask's
  two regions, exact output size, colour preservation).
"""

from .functional import (
                         WCT_EPS,
                         WCT_LAYER,
                         apply_affine,
                         colouring_matrix,
                         feature_moments,
                         wct,
                         wct_affine,
                         whiten,
                         whitening_matrix,
)
from .stylizer import WCTConfig, WCTStatistics, WCTStylizer, masked_wct, mix_statistics

__all__ = ["WCT_EPS", "WCT_LAYER", "WCTConfig", "WCTStatistics", "WCTStylizer", "apply_affine", "colouring_matrix",
           "feature_moments", "masked_wct", "mix_statistics", "wct", "wct_affine", "whiten", "whitening_matrix"]
