"""Offline image data for training: Qt rcc bundles, gcompris puzzles and the fetch recipe.

Nothing happens at import; see docs/DATA.md and scripts/fetch_data.py.
"""

