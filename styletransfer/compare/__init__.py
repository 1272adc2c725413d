"""Stylise one content/style pair under every formulation and compare the results.

Every registered style loss (and each feed-forward method it can run) stylises the same pair
with the same encoder, seed, size and step budget; each output is then measured under every
registered loss (the cross-loss matrix). Split by job:

* :mod:`.selection`: which methods run, and the configuration;
* :mod:`.matrix`: the measurements and the cross-loss matrix;
* :mod:`.identity`: the Gram ≡ poly-MMD identity, checked on the run's own features;
* :mod:`.report` and :mod:`.grid`: ``report.json``, ``report.md`` and ``grid.png``;
* :mod:`.run`: ``compare_files``, which runs it all.
"""

from .grid import build_grid
from .identity import gram_poly_identity, identity_ratios, identity_summary
from .matrix import StyleMeter, cross_loss_matrix, diagonal, layer_weight_map
from .report import GRID_NAME, REPORT_JSON, REPORT_MD, build_report, render_markdown
from .run import compare_files, planned_files
from .selection import CompareConfig, available_methods, select_methods

__all__ = ["GRID_NAME", "REPORT_JSON", "REPORT_MD", "CompareConfig", "StyleMeter", "available_methods", "build_grid",
           "build_report", "compare_files", "cross_loss_matrix", "diagonal", "gram_poly_identity", "identity_ratios",
           "identity_summary", "layer_weight_map", "planned_files", "render_markdown", "select_methods"]
