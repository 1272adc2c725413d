"""Experiments behind ``styletransfer ablate`` (docs/ABLATIONS.md).

One module per experiment — ``norm`` (normalization ablation of ``TransformerNet``), ``stats``
(batch dependence of instance vs batch statistics), ``adabn`` (re-estimating BN statistics on a
shifted domain) — each with a config dataclass (full defaults, a ``QUICK`` preset), a ``run``
function and a pure ``build_markdown``. Shared: ``metrics`` (pure metrics), ``report`` (summary
statistics, tables, output files), ``plot`` (Pillow plots), ``data`` (content images),
``shapes`` (the synthetic classification domains), ``perceptual`` (the training loss).
Nothing runs at import.
"""
