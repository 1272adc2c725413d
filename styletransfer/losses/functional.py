"""Style, content and regularisation losses as pure tensor functions.

Feature maps are ``(N, C, H, W)`` (or already flattened ``(N, C, M)``); every style distance
returns one value per batch item, shape ``(N,)``. Notation follows REFERENCE.md: the M columns
of a flattened map are the samples x_i ∈ ℝ^C of the image's feature distribution.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def flatten(features: Tensor) -> Tensor:
    """(N, C, H, W) → (N, C, M); (N, C, M) passes through."""
    return features.flatten(2) if features.dim() == 4 else features


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrix normalised by the number of positions: G/M = F Fᵀ / M, shape (N, C, C)."""
    f = flatten(features)  # (N, C, M)
    return f @ f.transpose(1, 2) / f.shape[-1]


def channel_mean(features: Tensor) -> Tensor:
    return flatten(features).mean(dim=-1)  # (N, C)


def channel_std(features: Tensor, *, unbiased: bool = False, eps: float = 0.0) -> Tensor:
    """Per-channel standard deviation, sqrt(var + eps); biased by default (REFERENCE.md)."""
    return (flatten(features).var(dim=-1, unbiased=unbiased) + eps).sqrt()  # (N, C)


def _sq_norm(x: Tensor) -> Tensor:
    """Squared Frobenius norm over all but the batch dimension."""
    return x.flatten(1).pow(2).sum(dim=1)


# --- Gram / polynomial MMD ------------------------------------------------------------------


def gram_distance(gram_x: Tensor, gram_y: Tensor) -> Tensor:
    """Gatys' E = 1/(4C²) · ‖G/M − A/M'‖²_F, from position-normalised Grams."""
    channels = gram_x.shape[-1]
    return _sq_norm(gram_x - gram_y) / (4 * channels**2)


def gram_loss(x: Tensor, y: Tensor) -> Tensor:
    """Gatys et al. 2016: E = 1/(4 C² M²) Σ_ij (G_ij − A_ij)², with G/M for unequal sizes."""
    return gram_distance(gram_matrix(x), gram_matrix(y))


def mmd_poly2_distance(gram_x: Tensor, mean_x: Tensor, gram_y: Tensor, mean_y: Tensor, c: float) -> Tensor:
    """MMD² for k = (xᵀy + c)² from sufficient statistics: ‖G/M − A/M'‖² + 2c‖μx − μy‖²."""
    return _sq_norm(gram_x - gram_y) + 2 * c * _sq_norm(mean_x - mean_y)


def mmd_poly(x: Tensor, y: Tensor, degree: int = 2, c: float = 0.0) -> Tensor:
    """MMD² (biased V-statistic) for the polynomial kernel k = (xᵀy + c)^degree.

    Degree 2 costs O(M·C²) and never forms the M×M kernel matrix; other degrees fall back to
    the exact quadratic-time estimator, evaluated in blocks.
    """
    if degree == 2:
        return mmd_poly2_distance(gram_matrix(x), channel_mean(x), gram_matrix(y), channel_mean(y), c)
    return mmd_exact(x, y, lambda a, b: (a @ b + c) ** degree)


def mmd_linear(x: Tensor, y: Tensor) -> Tensor:
    """MMD² for the linear kernel k = xᵀy, which is ‖μx − μy‖²."""
    return _sq_norm(channel_mean(x) - channel_mean(y))


# --- Exact (quadratic-time) MMD, for references and small inputs -----------------------------


def _kernel_mean(a: Tensor, b: Tensor, kernel, block: int, skip_diagonal: bool = False) -> Tensor:
    """mean_ij k(a_i, b_j) for a: (N, C, M), b: (N, C, M'), blockwise over a's positions.

    With ``skip_diagonal`` (a is b) the i = j terms are left out: the U-statistic mean.
    """
    total = a.new_zeros(a.shape[0])
    at = a.transpose(1, 2)  # (N, M, C)
    for start in range(0, at.shape[1], block):
        values = kernel(at[:, start : start + block], b)  # (N, block, M')
        total = total + values.sum(dim=(1, 2))
        if skip_diagonal:
            total = total - torch.diagonal(values, offset=start, dim1=1, dim2=2).sum(-1)
    pairs = a.shape[-1] * (b.shape[-1] - 1 if skip_diagonal else b.shape[-1])
    return total / pairs


def mmd_exact(x: Tensor, y: Tensor, kernel, block: int = 1024, unbiased: bool = False) -> Tensor:
    """Quadratic-time MMD²: mean k(x,x') + mean k(y,y') − 2 mean k(x,y).

    ``kernel(A, B)`` gets A: (N, m, C) and B: (N, C, M') and returns the (N, m, M') block.
    The biased V-statistic by default; ``unbiased`` leaves out the i = j terms (U-statistic).
    """
    x, y = flatten(x), flatten(y)
    return (
        _kernel_mean(x, x, kernel, block, skip_diagonal=unbiased)
        + _kernel_mean(y, y, kernel, block, skip_diagonal=unbiased)
        - 2 * _kernel_mean(x, y, kernel, block)
    )


def rbf_kernel(sigma: float):
    """k(a, b) = exp(−‖a − b‖² / (2σ²)) in the block form ``mmd_exact`` expects."""

    def kernel(a: Tensor, b: Tensor) -> Tensor:
        sq = a.pow(2).sum(-1, keepdim=True) - 2 * a @ b + b.pow(2).sum(1, keepdim=True)
        return torch.exp(-sq.clamp_min(0) / (2 * sigma**2))

    return kernel


def mmd_rbf_exact(x: Tensor, y: Tensor, sigma: float, unbiased: bool = False) -> Tensor:
    """The quadratic-time Gaussian-kernel MMD² (V- or U-statistic); a reference only."""
    return mmd_exact(x, y, rbf_kernel(sigma), unbiased=unbiased)


# --- Gaussian-kernel MMD in linear time ------------------------------------------------------


RBF_RELATIVE_FLOOR = 1e-4  # 2σ² ≥ this × the mean squared norm of y's positions
RBF_ABSOLUTE_FLOOR = 1e-12  # only for all-zero features


def rbf_bandwidth(y: Tensor, generator: torch.Generator | None = None, pairs: int = 4096) -> float:
    """σ with 2σ² = mean squared distance of randomly sampled pairs of y's positions.

    Follows Neural-Style-MMD's heuristic: a typical pair then has kernel value e^{-1}. For a
    (nearly) flat style the pairs are (nearly) equal, which would make σ arbitrarily small and the
    kernel a Dirac; 2σ² is therefore floored at ``RBF_RELATIVE_FLOOR`` times the mean squared
    norm of the positions, so σ keeps the features' scale (and scales with them).
    """
    f = flatten(y)[0]  # (C, M)
    m = f.shape[-1]
    i = torch.randint(m, (pairs,), generator=generator).to(f.device)
    j = torch.randint(m, (pairs,), generator=generator).to(f.device)
    mean_sq = (f[:, i] - f[:, j]).pow(2).sum(0).mean().item()
    scale = f.pow(2).sum(0).mean().item()  # mean ‖y_i‖²
    return math.sqrt(max(mean_sq, RBF_RELATIVE_FLOOR * scale, RBF_ABSOLUTE_FLOOR) / 2)


def random_fourier_frequencies(channels: int, num_features: int, sigma: float,
                               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """W ~ N(0, σ⁻²I) of shape (D, C) and phases b ~ U[0, 2π) of shape (D,) (Rahimi & Recht)."""
    w = torch.randn(num_features, channels, generator=generator) / sigma
    b = torch.rand(num_features, generator=generator) * (2 * math.pi)
    return w, b


RFF_CHUNK = 16_384  # positions per block: the projection of a block is D × RFF_CHUNK floats


def _projection(w: Tensor, b: Tensor, block: Tensor) -> Tensor:
    return torch.matmul(w, block) + b.view(-1, 1)  # (N, D, m) = (D, C) @ (N, C, m) + (D, 1)


class _CosineMean(torch.autograd.Function):
    """Σ_i cos(W x_i + b) over positions, in blocks of positions, with a hand-written backward.

    Autograd would keep the whole (N, D, M) projection for the backward pass (at relu1_1 of a
    1024² image, D = 256: a gigabyte per tensor); here each block's projection is recomputed
    in the backward pass instead, so memory stays O(N·D·chunk). d/dx_i = −Wᵀ (g ⊙ sin(W x_i + b)).
    """

    @staticmethod
    def forward(ctx, f: Tensor, w: Tensor, b: Tensor, chunk: int) -> Tensor:
        total = f.new_zeros(f.shape[0], w.shape[0])  # (N, D)
        for start in range(0, f.shape[-1], chunk):
            total += torch.cos(_projection(w, b, f[..., start:start + chunk])).sum(dim=-1)
        ctx.save_for_backward(f, w, b)
        ctx.chunk = chunk
        return total

    @staticmethod
    def backward(ctx, grad: Tensor):
        f, w, b = ctx.saved_tensors
        grad_f = torch.empty_like(f)  # (N, C, M)
        for start in range(0, f.shape[-1], ctx.chunk):
            block = slice(start, start + ctx.chunk)
            sines = torch.sin(_projection(w, b, f[..., block]))  # (N, D, m)
            grad_f[..., block] = -torch.matmul(w.t(), sines * grad.unsqueeze(-1))  # (N, C, m)
        return grad_f, None, None, None


def rff_mean_embedding(features: Tensor, w: Tensor, b: Tensor, chunk: int = RFF_CHUNK) -> Tensor:
    """mean_i φ(x_i) with φ(x) = sqrt(2/D)·cos(Wx + b); shape (N, D). Cost O(M·C·D).

    Evaluated over blocks of ``chunk`` positions, so memory is O(N·D·chunk) in both passes;
    the value does not depend on ``chunk`` beyond float rounding. W and b are constants (no
    gradient flows to them).
    """
    f = flatten(features)  # (N, C, M)
    total = _CosineMean.apply(f, w.to(f), b.to(f), int(chunk))  # (N, D)
    return total * (math.sqrt(2.0 / w.shape[0]) / f.shape[-1])


def mmd_rbf_rff(x: Tensor, y: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """‖mean φ(x) − mean φ(y)‖²: an unbiased estimate (over W, b) of the biased MMD² V-statistic
    for the Gaussian kernel whose bandwidth W was drawn with. Deterministic for fixed W, b."""
    return _sq_norm(rff_mean_embedding(x, w, b) - rff_mean_embedding(y, w, b))


def mmd_rbf_linear(x: Tensor, y: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    """Gretton et al. 2012's unbiased linear-time MMD² estimator for the Gaussian kernel.

    Both sample sets are randomly permuted (the larger one subsampled to the smaller's size)
    and consecutive samples paired: mean over pairs of
    h = k(x₁,x₂) + k(y₁,y₂) − k(x₁,y₂) − k(x₂,y₁). Unbiased for the U-statistic MMD².
    """
    fx, fy = flatten(x), flatten(y)
    n = min(fx.shape[-1], fy.shape[-1]) // 2 * 2
    px = torch.randperm(fx.shape[-1], generator=generator)[:n].to(fx.device)
    py = torch.randperm(fy.shape[-1], generator=generator)[:n].to(fy.device)
    x1, x2 = fx[..., px[0::2]], fx[..., px[1::2]]  # (N, C, n/2)
    y1, y2 = fy[..., py[0::2]], fy[..., py[1::2]]

    def k(a: Tensor, b: Tensor) -> Tensor:
        return torch.exp(-(a - b).pow(2).sum(1) / (2 * sigma**2))  # (N, n/2)

    return (k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1)).mean(dim=-1)


# --- Batch-norm statistics -------------------------------------------------------------------


def bn_stats_distance(mean_x: Tensor, std_x: Tensor, mean_y: Tensor, std_y: Tensor) -> Tensor:
    """(1/C)·Σ_c [(μx − μy)² + (σx − σy)²]."""
    return ((mean_x - mean_y).pow(2) + (std_x - std_y).pow(2)).mean(dim=-1)


BN_STATS_EPS = 1e-8  # σ = √(var + ε): a channel without variance gets a finite gradient, not 0·∞ = NaN


def bn_stats_loss(x: Tensor, y: Tensor) -> Tensor:
    """Li et al. 2017's BN-statistic matching with biased standard deviations √(var + ε)."""
    return bn_stats_distance(channel_mean(x), channel_std(x, eps=BN_STATS_EPS),
                             channel_mean(y), channel_std(y, eps=BN_STATS_EPS))


# --- Content and total variation -------------------------------------------------------------


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Gatys' content loss ½·Σ (F − P)², per batch item."""
    return 0.5 * _sq_norm(features - target)


def tv_loss(image: Tensor, power: float = 2.0) -> Tensor:
    """Σ |neighbour differences|^power over both axes, per batch item."""
    dh = (image[..., 1:, :] - image[..., :-1, :]).abs().pow(power)
    dw = (image[..., :, 1:] - image[..., :, :-1]).abs().pow(power)
    return dh.flatten(1).sum(1) + dw.flatten(1).sum(1)


# --- Mean and covariance: Gaussian 2-Wasserstein (Bures) and CORAL ----------------------------


def channel_covariance(features: Tensor) -> Tensor:
    """Biased covariance Σ = (F − μ)(F − μ)ᵀ / M over positions, shape (N, C, C)."""
    f = flatten(features)  # (N, C, M)
    centred = f - f.mean(dim=-1, keepdim=True)
    return centred @ centred.transpose(1, 2) / f.shape[-1]


SQRT_GRAD_RELATIVE_FLOOR = 1e-6  # √λi + √λj ≥ this × the largest √λ of the matrix, in the backward pass
SQRT_GRAD_ABSOLUTE_FLOOR = 1e-12  # only for an all-zero matrix


class _SymmetricSqrt(torch.autograd.Function):
    """The PSD square root S = U diag(√λ) Uᵀ of sym(A) = U diag(λ) Uᵀ, in float64, λ clamped at 0.

    Backward solves the Sylvester equation S dA + dA S = dS in the eigenbasis:
    dA = U [(Uᵀ dS U)_ij / (√λi + √λj)] Uᵀ, the denominator floored so that a singular matrix
    (rank-deficient covariance, flat channel) gives a finite gradient; autograd through ``eigh``
    would divide by λi − λj instead, infinite for repeated eigenvalues.
    """

    @staticmethod
    def forward(ctx, a: Tensor) -> Tensor:
        a64 = a.double()
        eigenvalues, vectors = torch.linalg.eigh((a64 + a64.transpose(-1, -2)) / 2)  # (..., C), (..., C, C)
        roots = eigenvalues.clamp_min(0).sqrt()
        ctx.save_for_backward(vectors, roots)
        return (vectors * roots.unsqueeze(-2) @ vectors.transpose(-1, -2)).to(a.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> Tensor:
        vectors, roots = ctx.saved_tensors
        g = grad.double()
        g = (g + g.transpose(-1, -2)) / 2
        inner = vectors.transpose(-1, -2) @ g @ vectors  # (..., C, C), in the eigenbasis
        floor = (SQRT_GRAD_RELATIVE_FLOOR * roots.amax(dim=-1, keepdim=True)).clamp_min(SQRT_GRAD_ABSOLUTE_FLOOR)
        denominator = torch.maximum(roots.unsqueeze(-1) + roots.unsqueeze(-2), floor.unsqueeze(-1))
        return (vectors @ (inner / denominator) @ vectors.transpose(-1, -2)).to(grad.dtype)


def sqrtm_psd(matrix: Tensor) -> Tensor:
    """Square root of a symmetric PSD matrix (..., C, C) by eigendecomposition in float64, with a
    stable gradient (``_SymmetricSqrt``); returned in the input's dtype."""
    return _SymmetricSqrt.apply(matrix)


def bures_distance(mean_x: Tensor, cov_x: Tensor, mean_y: Tensor, cov_y: Tensor,
                   root_y: Tensor | None = None) -> Tensor:
    """(1/C)·[‖μx − μy‖² + tr(Σx + Σy − 2(Σy^½ Σx Σy^½)^½)], the squared Gaussian 2-Wasserstein
    distance divided by C; the matrix part in float64. ``root_y`` = Σy^½ when cached. Shape (N,)."""
    dtype, channels = cov_x.dtype, cov_x.shape[-1]
    cov_x, cov_y = cov_x.double(), cov_y.double()
    root_y = sqrtm_psd(cov_y) if root_y is None else root_y.double()
    cross = sqrtm_psd(root_y @ cov_x @ root_y)  # (N, C, C)
    traces = (torch.diagonal(cov_x, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(cov_y, dim1=-2, dim2=-1).sum(-1)
              - 2 * torch.diagonal(cross, dim1=-2, dim2=-1).sum(-1))
    return ((mean_x - mean_y).pow(2).sum(-1) + traces.to(dtype)) / channels


def coral_distance(mean_x: Tensor, cov_x: Tensor, mean_y: Tensor, cov_y: Tensor) -> Tensor:
    """(1/C)·‖μx − μy‖² + ‖Σx − Σy‖²_F / (4C²): Deep CORAL's term (Sun & Saenko 2016), which is
    Gatys' Gram loss on centred features, plus the mean term of the Bures form. Shape (N,)."""
    channels = cov_x.shape[-1]
    return (mean_x - mean_y).pow(2).sum(-1) / channels + _sq_norm(cov_x - cov_y) / (4 * channels**2)


MEAN_COV_FORMS = ("bures", "coral")


def mean_cov_loss(x: Tensor, y: Tensor, form: str = "bures") -> Tensor:
    """Match means and covariances: ``bures`` (Gaussian W2², /C) or ``coral`` (see above)."""
    stats = channel_mean(x), channel_covariance(x), channel_mean(y), channel_covariance(y)
    if form == "bures":
        return bures_distance(*stats)
    if form == "coral":
        return coral_distance(*stats)
    raise ValueError(f"unknown mean-cov form {form!r}; choose from {', '.join(MEAN_COV_FORMS)}")


# --- Sliced Wasserstein ------------------------------------------------------------------------


def random_directions(channels: int, count: int, generator: torch.Generator | None = None) -> Tensor:
    """``count`` directions drawn uniformly on the unit sphere of ℝ^C, shape (K, C)."""
    v = torch.randn(count, channels, generator=generator)
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def resample_sorted(values: Tensor, count: int) -> Tensor:
    """Sorted samples (..., K, M') read at the mid-point quantile levels (i + ½)/count of ``count``
    samples: linear interpolation of the empirical quantile function whose knots are at (j + ½)/M'
    (constant beyond the first and last knots). The identity when count = M'."""
    if values.shape[-1] == count:
        return values
    shape = values.shape
    flat = values.reshape(-1, 1, shape[-1])  # (B, 1, M'): interpolate wants (batch, channel, length)
    out = torch.nn.functional.interpolate(flat, size=count, mode="linear", align_corners=False)
    return out.reshape(*shape[:-1], count)


def sliced_wasserstein(x: Tensor, y: Tensor, directions: Tensor) -> Tensor:
    """Heitz et al. 2021: (1/(K·M)) Σ_k Σ_i (sort(v_kᵀX)_i − Q_k,y((i + ½)/M))², the exact 1-D
    squared W2 of the projections onto the rows v_k of ``directions`` (K, C), averaged over k.
    Q_k,y is y's sorted projection, resampled to x's M positions (``resample_sorted``). Shape (N,)."""
    fx, fy = flatten(x), flatten(y)  # (N, C, M), (1, C, M')
    v = directions.to(fx)
    px = torch.sort(v @ fx, dim=-1).values  # (N, K, M)
    py = resample_sorted(torch.sort(v @ fy, dim=-1).values, fx.shape[-1])  # (1, K, M)
    return (px - py).pow(2).mean(dim=(1, 2))


# --- MRF (nearest-neighbour patches) -----------------------------------------------------------


MRF_CHUNK = 2048  # patches per block in the matching: a block of similarities is MRF_CHUNK² values


def mrf_patch_size(patch_size: int, *shapes) -> int:
    """The patch side used on maps of the given (..., H, W) shapes: ``patch_size``, or the largest
    that fits in all of them when one is smaller (deep layers of small images)."""
    return min(patch_size, *(min(shape[-2:]) for shape in shapes))


def extract_patches(features: Tensor, patch_size: int, stride: int = 1) -> Tensor:
    """All k×k patches (no padding), flattened: (N, C, H, W) → (N, C·k², P)."""
    return torch.nn.functional.unfold(features, patch_size, stride=stride)


def unit_patches(patches: Tensor) -> Tensor:
    """Patches (N, D, Q) scaled to unit norm (an all-zero patch stays zero)."""
    return torch.nn.functional.normalize(patches, dim=1, eps=1e-12)


@torch.no_grad()
def mrf_matches(patches: Tensor, style_unit: Tensor, chunk: int = MRF_CHUNK) -> Tensor:
    """Index (N, P) of the style patch with the largest normalised cross-correlation (cosine) with
    each generated patch. ``style_unit``: unit-norm style patches (1 or N, D, Q). Blocks of
    ``chunk`` generated × ``chunk`` style patches, so memory is O(chunk²), not O(P·Q); a tie keeps
    the first style patch."""
    n, _, count = patches.shape
    units = style_unit.expand(n, -1, -1).transpose(1, 2)  # (N, Q, D)
    best = torch.empty(n, count, dtype=torch.long, device=patches.device)
    for start in range(0, count, chunk):
        block = patches[..., start:start + chunk]  # (N, D, p)
        top = block.new_full((n, block.shape[-1]), -float("inf"))
        index = torch.zeros(n, block.shape[-1], dtype=torch.long, device=patches.device)
        for s in range(0, units.shape[1], chunk):
            # ⟨p, ŝ⟩ = ‖p‖·cos(p, s): the same argmax over s as the cosine itself
            values, where = (units[:, s:s + chunk] @ block).max(dim=1)  # (N, p)
            better = values > top
            top = torch.where(better, values, top)
            index = torch.where(better, where + s, index)
        best[:, start:start + block.shape[-1]] = index
    return best


def mrf_distance(patches: Tensor, style_patches: Tensor, style_unit: Tensor | None = None,
                 chunk: int = MRF_CHUNK) -> Tensor:
    """(1/(P·D)) Σ_i ‖Ψ_i(x) − Ψ_NN(i)(s)‖²: the mean squared difference between each generated
    patch (N, D, P) and its best style patch (1, D, Q) by normalised cross-correlation. No
    gradient flows through the matching. Shape (N,)."""
    if style_unit is None:
        style_unit = unit_patches(style_patches)
    index = mrf_matches(patches.detach(), style_unit, chunk)  # (N, P)
    styles = style_patches.expand(patches.shape[0], -1, -1)  # (N, D, Q)
    matched = torch.gather(styles, 2, index.unsqueeze(1).expand(-1, styles.shape[1], -1))  # (N, D, P)
    return (patches - matched).pow(2).mean(dim=(1, 2))


def mrf_loss(x: Tensor, y: Tensor, patch_size: int = 3, stride: int = 1, chunk: int = MRF_CHUNK) -> Tensor:
    """Li & Wand 2016's MRF loss on (N, C, H, W) features x and a style's (1, C, H', W') y, with
    k×k patches (k shrunk to fit a smaller map, ``mrf_patch_size``) at ``stride``."""
    k = mrf_patch_size(patch_size, x.shape, y.shape)
    return mrf_distance(extract_patches(x, k, stride), extract_patches(y, k, stride), chunk=chunk)
