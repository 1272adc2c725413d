"""Magenta's arbitrary-stylization networks (Ghiasi et al. 2017) as PyTorch modules.

* ``StylePredictor``: MobileNetV2 (batch norm folded into the conv biases, ReLU6) up to its
  1280-channel 1x1 conv, a global average pool and a 1x1 conv to a 100-d style embedding.
  TensorFlow's "SAME" padding (asymmetric for even sizes and stride 2) is reproduced, so the
  network runs at any input size exactly as TensorFlow would.
* ``StyleTransformer``: contract (9x9, two stride-2 3x3 convs; ReLU), five residual blocks and
  an expand path (nearest 2x upsampling + 3x3 conv, twice, then 9x9 and a sigmoid), every
  residual and expand conv followed by a *conditional instance norm* whose scale and shift are
  linear maps of the embedding. Reflection padding throughout. Its layers are a
  ``TransformerPlan``, so the same class builds the 26-style network of :mod:`styletransfer.cin`
  (norms after the contract convs too, conditioned on the style weights instead).

Parameter names follow the TensorFlow scopes they come from (see ``tf_names``), so the weight
import is a lookup, and the layer names of ``StylePredictor.layer_names`` say where a feature
lies (``block3_expand`` is the ReLU6 output of ``expanded_conv_3/expand``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EMBEDDING_SIZE = 100
RELU6_MAX = 6.0
DEFAULT_EPSILON = 1e-5  # the conditional instance norm's; the imported graph's value replaces it

# MobileNetV2's inverted-residual settings: (expansion t, output channels c, repeats n, stride s).
MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


@dataclass(frozen=True)
class BlockPlan:
    index: int
    in_channels: int
    hidden: int  # channels after the expand conv (== in_channels when there is none)
    out_channels: int
    stride: int

    @property
    def expands(self) -> bool:
        return self.hidden != self.in_channels

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


def mobilenet_plan() -> tuple[BlockPlan, ...]:
    """Every inverted-residual block, derived from ``MOBILENET_V2``."""
    blocks, channels = [], STEM_CHANNELS
    for t, c, n, s in MOBILENET_V2:
        for repeat in range(n):
            blocks.append(BlockPlan(len(blocks), channels, channels * t, c, s if repeat == 0 else 1))
            channels = c
    return tuple(blocks)


def same_pad(x: Tensor, kernel: int, stride: int) -> Tensor:
    """TensorFlow's "SAME" zero padding: the output has ceil(size / stride) positions, and an odd
    total of padding puts the extra row/column at the bottom/right."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad lists the last dimension first
        total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads) if any(pads) else x


BINOMIAL = (1.0, 2.0, 1.0)  # the 3-tap blur of anti-aliased strided convs (Zhang 2019)


def binomial_blur(x: Tensor) -> Tensor:
    """A separable [1, 2, 1]/4 blur per channel, reflect-padded: the same size out."""
    taps = torch.tensor(BINOMIAL, dtype=x.dtype, device=x.device) / sum(BINOMIAL)
    kernel = (taps[:, None] * taps[None, :]).expand(x.shape[1], 1, 3, 3)  # (C, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernel, groups=x.shape[1])


class SameConv(nn.Conv2d):
    """A conv with TensorFlow's "SAME" padding (no padding of its own).

    ``antialias`` (stride 2 only; off in the trained network): blur the input first, so that the
    conv's subsampling does not alias. Used by the encoder to keep the gradient of a loss free of
    the stride's checkerboard (docs/MAGENTA.md); it changes the features slightly.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride=stride, groups=groups)
        self.antialias = False

    def forward(self, x: Tensor) -> Tensor:
        if self.antialias and self.stride[0] > 1:
            x = binomial_blur(x)
        return super().forward(same_pad(x, self.kernel_size[0], self.stride[0]))


def relu6(x: Tensor) -> Tensor:
    return x.clamp(0.0, RELU6_MAX)


class InvertedResidual(nn.Module):
    """expand (1x1, ReLU6; absent when t = 1) → depthwise 3x3 (ReLU6) → project (1x1, linear)."""

    def __init__(self, plan: BlockPlan) -> None:
        super().__init__()
        self.plan = plan
        self.expand = nn.Conv2d(plan.in_channels, plan.hidden, 1) if plan.expands else None
        self.depthwise = SameConv(plan.hidden, plan.hidden, 3, plan.stride, groups=plan.hidden)
        self.project = nn.Conv2d(plan.hidden, plan.out_channels, 1)

    def forward(self, x: Tensor, taps: dict[str, Tensor] | None = None) -> Tensor:
        """``taps`` (when given) receives ``expand`` and ``depthwise`` activations."""
        hidden = relu6(self.expand(x)) if self.expand is not None else x
        if taps is not None and self.expand is not None:
            taps["expand"] = hidden
        hidden = relu6(self.depthwise(hidden))
        if taps is not None:
            taps["depthwise"] = hidden
        out = self.project(hidden)
        return out + x if self.plan.residual else out


def predictor_layer_names() -> tuple[str, ...]:
    """Feature names in execution order: ``stem``, ``block{i}_expand``, ``block{i}_depthwise``,
    ``block{i}`` (the block's output), ``head``."""
    names = ["stem"]
    for plan in mobilenet_plan():
        if plan.expands:
            names.append(f"block{plan.index}_expand")
        names += [f"block{plan.index}_depthwise", f"block{plan.index}"]
    return (*names, "head")


class StylePredictor(nn.Module):
    """Style image (N, 3, H, W) RGB in [0, 1] → embedding (N, 100); any H, W ≥ 32."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv(3, STEM_CHANNELS, 3, stride=2)
        self.blocks = nn.ModuleList(InvertedResidual(plan) for plan in mobilenet_plan())
        self.head = nn.Conv2d(self.blocks[-1].plan.out_channels, HEAD_CHANNELS, 1)
        self.bottleneck = nn.Conv2d(HEAD_CHANNELS, EMBEDDING_SIZE, 1)

    def set_antialias(self, enabled: bool) -> None:
        for module in self.modules():
            if isinstance(module, SameConv):
                module.antialias = enabled

    def features(self, image: Tensor, wanted: set[str]) -> dict[str, Tensor]:
        """The named activations in ``wanted``; runs only as deep as the deepest of them."""
        outputs: dict[str, Tensor] = {}
        remaining = set(wanted)

        def keep(name: str, value: Tensor) -> bool:
            if name in remaining:
                outputs[name] = value
                remaining.discard(name)
            return not remaining

        x = relu6(self.stem(image))
        if keep("stem", x):
            return outputs
        for block in self.blocks:
            taps: dict[str, Tensor] = {}
            x = block(x, taps)
            index = block.plan.index
            for kind, value in taps.items():
                keep(f"block{index}_{kind}", value)
            if keep(f"block{index}", x):
                return outputs
        keep("head", relu6(self.head(x)))
        return outputs

    def forward(self, image: Tensor) -> Tensor:
        x = relu6(self.stem(image))
        for block in self.blocks:
            x = block(x)
        x = relu6(self.head(x)).mean(dim=(2, 3), keepdim=True)  # (N, 1280, 1, 1)
        return self.bottleneck(x).flatten(1)  # (N, 100)


def conditional_instance_norm(x: Tensor, scale: Tensor, shift: Tensor, eps: float, smooth=None) -> Tensor:
    """γ·(x − μ)/√(σ² + ε) + β with μ, σ² the biased moments over positions per channel.

    ``smooth`` (None: off): ``smooth("moments", μ, σ²)`` gives the moments used instead, e.g.
    their running averages over a clip's frames (:mod:`styletransfer.video.temporal`).
    """
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)  # (N, C, 1, 1) each
    if smooth is not None:
        mean, var = smooth("moments", mean, var)
    # as one multiply-add, x·a + b with a = γ/√(σ² + ε), b = β − μ·a: two passes over x instead of
    # six (scripts/bench_dataset.py's baseline keeps the six)
    gain = torch.rsqrt(var + eps) * scale[..., None, None]  # (N, C, 1, 1)
    return torch.addcmul(shift[..., None, None] - mean * gain, x, gain)


class StyleNorm(nn.Module):
    """Conditional instance norm: γ and β are linear maps of a condition vector.

    Magenta: the condition is the 100-d style embedding, the maps affine (``bias``). The
    26-style network (:mod:`styletransfer.cin`): the condition is the style weights w, the maps
    linear, their weights the per-style tables, so γ = Σ_s w_s γ_s and β = Σ_s w_s β_s.
    """

    smooth_moments = None  # a hook on the moments (see conditional_instance_norm); set per clip by --temporal

    def __init__(self, channels: int, eps: float = DEFAULT_EPSILON, *, condition: int = EMBEDDING_SIZE,
                 bias: bool = True) -> None:
        super().__init__()
        self.scale = nn.Linear(condition, channels, bias=bias)  # TF: StyleNorm/Conv_1
        self.shift = nn.Linear(condition, channels, bias=bias)  # TF: StyleNorm/Conv
        self.eps = eps

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        return conditional_instance_norm(x, self.scale(condition), self.shift(condition), self.eps,
                                         self.smooth_moments)


class ReflectConv(nn.Conv2d):
    """Reflection padding of kernel // 2, then a conv without padding."""

    def forward(self, x: Tensor) -> Tensor:
        pad = self.kernel_size[0] // 2
        return super().forward(F.pad(x, (pad, pad, pad, pad), mode="reflect"))


@dataclass(frozen=True)
class TransformerPlan:
    """The layers of a style transformer, so that one class builds Magenta's and the 26-style one."""

    contract: tuple[tuple[int, int, int, int], ...]  # (in, out, kernel, stride) per contract conv
    residual_blocks: int
    expand: tuple[tuple[int, int, int, int], ...]  # (in, out, kernel, nearest upsampling) per expand conv
    condition: int  # size of the vector the norms are conditioned on
    normalize_contract: bool = False  # conditional norms after the contract convs too
    bias: bool = True  # the convs and the norms' maps have biases

    @property
    def stride(self) -> int:
        """The total downsampling: inputs are padded to a multiple of it."""
        return math.prod(stride for *_, stride in self.contract)


class NormConv(nn.Module):
    """[nearest upsampling] → reflect-padded conv → conditional instance norm."""

    def __init__(self, cin: int, cout: int, kernel: int, upsample: int = 1, *, stride: int = 1,
                 condition: int = EMBEDDING_SIZE, bias: bool = True) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = ReflectConv(cin, cout, kernel, stride=stride, bias=bias)
        self.norm = StyleNorm(cout, condition=condition, bias=bias)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        return self.norm(self.conv(x), condition)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, **norm) -> None:
        super().__init__()
        self.conv1 = NormConv(channels, channels, 3, **norm)
        self.conv2 = NormConv(channels, channels, 3, **norm)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x, condition)), condition)


# (in, out, kernel, stride) of the contract convs; (in, out, kernel, upsampling) of the expand convs.
CONTRACT = ((3, 8, 9, 1), (8, 16, 3, 2), (16, 32, 3, 2))
EXPAND = ((32, 16, 3, 2), (16, 8, 3, 2), (8, 3, 9, 1))
RESIDUAL_BLOCKS = 5
MAGENTA_PLAN = TransformerPlan(CONTRACT, RESIDUAL_BLOCKS, EXPAND, condition=EMBEDDING_SIZE)
# The transformer's total downsampling: its input is padded to a multiple of this.
TRANSFORMER_STRIDE = MAGENTA_PLAN.stride


class StyleTransformer(nn.Module):
    """(content (N, 3, H, W) in [0, 1], condition (N, K)) → stylised (N, 3, H, W) in (0, 1).

    Magenta's (the default plan): the condition is the 100-d style embedding. H and W are best
    multiples of ``plan.stride`` (the stride-2 convs); the stylizers pad to that.
    """

    def __init__(self, plan: TransformerPlan = MAGENTA_PLAN) -> None:
        super().__init__()
        self.plan = plan
        norm = {"condition": plan.condition, "bias": plan.bias}
        self.contract = nn.ModuleList(
            NormConv(cin, cout, kernel, stride=stride, **norm) if plan.normalize_contract
            else ReflectConv(cin, cout, kernel, stride=stride, bias=plan.bias)
            for cin, cout, kernel, stride in plan.contract)
        channels = plan.contract[-1][1]
        self.residual = nn.ModuleList(ResidualBlock(channels, **norm) for _ in range(plan.residual_blocks))
        self.expand = nn.ModuleList(NormConv(cin, cout, kernel, up, **norm) for cin, cout, kernel, up in plan.expand)

    def set_epsilon(self, eps: float) -> None:
        for module in self.modules():
            if isinstance(module, StyleNorm):
                module.eps = eps

    def forward(self, content: Tensor, condition: Tensor) -> Tensor:
        x = content
        for layer in self.contract:
            x = F.relu(layer(x, condition) if isinstance(layer, NormConv) else layer(x))
        for block in self.residual:
            x = block(x, condition)
        for i, layer in enumerate(self.expand):
            x = layer(x, condition)
            x = torch.sigmoid(x) if i == len(self.expand) - 1 else F.relu(x)
        return x


def tf_names(network: nn.Module) -> dict[str, str]:
    """Parameter name → the TensorFlow scope its weights come from (without ``/weights``)."""
    names: dict[str, str] = {}
    if isinstance(network, StylePredictor):
        names["stem"] = "MobilenetV2/Conv"
        for block in network.blocks:
            scope = "MobilenetV2/expanded_conv" + (f"_{block.plan.index}" if block.plan.index else "")
            for part in ("expand", "depthwise", "project"):
                if getattr(block, part) is not None:
                    names[f"blocks.{block.plan.index}.{part}"] = f"{scope}/{part}"
        names["head"] = "MobilenetV2/Conv_1"
        names["bottleneck"] = "mobilenet_conv/Conv"
    else:
        for i in range(len(CONTRACT)):
            names[f"contract.{i}"] = f"transformer/contract/conv{i + 1}"
        convs = [(f"residual.{b}.conv{c}", f"residual/residual{b + 1}/conv{c}")
                 for b in range(RESIDUAL_BLOCKS) for c in (1, 2)]
        convs += [(f"expand.{i}", f"expand/conv{i + 1}/conv") for i in range(len(EXPAND))]
        for module, scope in convs:
            names[f"{module}.conv"] = f"transformer/{scope}"
            names[f"{module}.norm.scale"] = f"style_params/transformer/{scope}/StyleNorm/Conv_1"
            names[f"{module}.norm.shift"] = f"style_params/transformer/{scope}/StyleNorm/Conv"
    return names
