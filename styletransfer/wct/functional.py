"""WCT's formulas (Li et al. 2017, "Universal style transfer via feature transforms") as pure
tensor functions.

For content features F_c ∈ ℝ^{C×M} with mean μ_c and covariance Σ_c = E_c D_c E_cᵀ, and a
style's mean μ_s and covariance Σ_s = E_s D_s E_sᵀ:

    whitening   W = E_c D_c^{−½} E_cᵀ          W Σ_c Wᵀ = I
    colouring   K = E_s D_s^{½} E_sᵀ           K Kᵀ = Σ_s
    WCT(f)      = K W (f − μ_c) + μ_s          mean μ_s, covariance Σ_s

and the blend with the content, α·WCT(f) + (1 − α)·f, which is one affine map of each feature
vector, f ↦ T f + b with T = α K W + (1 − α) I and b = α (μ_s − K W μ_c) (:func:`wct_affine`).
WCT is to the ``mean-cov`` loss what AdaIN is to ``bn-stats``: it gives the content features
exactly the statistics (μ, Σ) that loss compares; with diagonal covariances it is AdaIN.

Choices, against the authors' Torch code and PytorchWCT:

* covariance: biased, Σ = (F − μ)(F − μ)ᵀ / M, the ``channel_covariance`` of the ``mean-cov``
  loss, so the output's (μ, Σ) is that loss's target (up to ``WCT_EPS``). The original divides by
  M − 1; that only scales K W by √((1 − 1/M_c) / (1 − 1/M_s)), within 1/(2·min(M_c, M_s)) of 1
  (under 0.2 % at relu4_1 of any image of 128² pixels or more), so it does not argue otherwise;
* regularisation: ``WCT_EPS`` = 1e-5 on the diagonal of both covariances before the float64
  eigendecomposition, eigenvalues then clamped at it against rounding. 1e-5 is the original's
  eigenvalue cut-off and AdaIN's variance eps (the original drops eigenvalues below it; PytorchWCT
  adds 1 to Σ_c's diagonal). Whitening then scales each content direction to variance
  λ/(λ + eps) ≤ 1, so a direction the content barely varies in (a flat channel, or more channels
  than positions in a small image) is not blown up; and with diagonal covariances WCT is exactly
  AdaIN with σ = √(biased variance + eps).

Statistics are float64 (on the CPU when the features are on Apple's MPS, which has no float64);
:func:`apply_affine` returns the features' dtype and device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..adain.functional import ADAIN_LAYER
from ..losses.functional import channel_covariance, channel_mean, flatten

WCT_LAYER = ADAIN_LAYER  # single level: relu4_1, decoded by the AdaIN decoder
WCT_EPS = 1e-5


def _float64(tensor: Tensor) -> Tensor:
    return (tensor.cpu() if tensor.device.type == "mps" else tensor).double()


def feature_moments(features: Tensor) -> tuple[Tensor, Tensor]:
    """Channel mean (N, C) and biased covariance (N, C, C) of (N, C, H, W) or (N, C, M) features,
    in float64."""
    values = _float64(features)
    return channel_mean(values), channel_covariance(values)


def _eigh(covariance: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Eigenvalues (…, C) and eigenvectors (…, C, C) of sym(Σ) + eps·I in float64, the values
    clamped at eps."""
    cov = _float64(covariance)
    cov = (cov + cov.transpose(-1, -2)) / 2 + eps * torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    values, vectors = torch.linalg.eigh(cov)
    return values.clamp_min(eps), vectors


def _symmetric_power(covariance: Tensor, power: float, eps: float) -> Tensor:
    """E D^power Eᵀ for (Σ + eps·I) = E D Eᵀ, (…, C, C) float64."""
    values, vectors = _eigh(covariance, eps)
    return (vectors * values.pow(power).unsqueeze(-2)) @ vectors.transpose(-1, -2)


def whitening_matrix(covariance: Tensor, eps: float = WCT_EPS) -> Tensor:
    """W = E D^{−½} Eᵀ of Σ + eps·I, (…, C, C) float64: W Σ Wᵀ = I up to eps."""
    return _symmetric_power(covariance, -0.5, eps)


def colouring_matrix(covariance: Tensor, eps: float = WCT_EPS) -> Tensor:
    """K = E D^{½} Eᵀ of Σ + eps·I, (…, C, C) float64: K Kᵀ = Σ + eps·I."""
    return _symmetric_power(covariance, 0.5, eps)


def wct_affine(content_mean: Tensor, content_cov: Tensor, style_mean: Tensor, style_cov: Tensor,
               alpha: float = 1.0, eps: float = WCT_EPS) -> tuple[Tensor, Tensor]:
    """α·WCT + (1 − α)·identity as an affine map of the feature vectors: (T, b), float64.

    T = α K W + (1 − α) I (…, C, C) and b = α (μ_s − K W μ_c) (…, C), from means (…, C) and
    covariances (…, C, C); batch dimensions broadcast (one style for a batch of contents).
    """
    transform = colouring_matrix(style_cov, eps) @ whitening_matrix(content_cov, eps)  # (N, C, C) K W
    eye = torch.eye(transform.shape[-1], dtype=transform.dtype, device=transform.device)
    shift = _float64(style_mean) - (transform @ _float64(content_mean).unsqueeze(-1)).squeeze(-1)  # (N, C)
    return alpha * transform + (1 - alpha) * eye, alpha * shift


def apply_affine(features: Tensor, matrix: Tensor, shift: Tensor) -> Tensor:
    """T f + b at every position of (N, C, H, W) or (N, C, M) features, in their dtype and device."""
    values = flatten(features)  # (N, C, M)
    matrix = matrix.to(values.device, values.dtype).expand(values.shape[0], -1, -1)  # (N, C, C)
    shift = shift.to(values.device, values.dtype).expand(values.shape[0], -1)  # (N, C)
    return torch.baddbmm(shift.unsqueeze(-1), matrix, values).view(features.shape)


def whiten(features: Tensor, eps: float = WCT_EPS) -> Tensor:
    """W (f − μ_c): the content features with zero mean and (up to eps) identity covariance, float64."""
    mean, cov = feature_moments(features)
    centred = flatten(_float64(features)) - mean.unsqueeze(-1)  # (N, C, M)
    return (whitening_matrix(cov, eps) @ centred).view(features.shape)


def wct(features: Tensor, style_mean: Tensor, style_cov: Tensor, alpha: float = 1.0,
        eps: float = WCT_EPS) -> Tensor:
    """α·(K W (f − μ_c) + μ_s) + (1 − α)·f for (N, C, H, W) or (N, C, M) content features and a
    style's mean (…, C) and covariance (…, C, C); returned in the features' dtype."""
    return apply_affine(features, *wct_affine(*feature_moments(features), style_mean, style_cov, alpha, eps))
