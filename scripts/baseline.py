"""Plain reference implementations, written the way common research code does it.

Used only by ``scripts/bench.py`` as the baseline that every speed ratio is measured against:
fp32, NCHW, ``torch.no_grad`` (not inference mode), ``nn.Sequential`` networks with separate
padding modules, the style re-encoded for every pair, single-scale L-BFGS. Weights are random:
time does not depend on their values. Never imported by the package.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(cin, cout, (3, 3)), nn.ReLU()]


def adain_vgg() -> nn.Sequential:
    """pytorch-AdaIN's encoder up to relu4_1 (children[:31])."""
    pool = [nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True)]
    layers = [nn.Conv2d(3, 3, (1, 1))] + _conv(3, 64) + _conv(64, 64) + pool
    layers += _conv(64, 128) + _conv(128, 128) + pool
    layers += _conv(128, 256) + _conv(256, 256) + _conv(256, 256) + _conv(256, 256) + pool
    layers += _conv(256, 512)
    return nn.Sequential(*layers)


def adain_decoder() -> nn.Sequential:
    up = [nn.Upsample(scale_factor=2, mode="nearest")]
    layers = _conv(512, 256) + up + _conv(256, 256) + _conv(256, 256) + _conv(256, 256) + _conv(256, 128) + up
    layers += _conv(128, 128) + _conv(128, 64) + up + _conv(64, 64)
    layers += [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(64, 3, (3, 3))]
    return nn.Sequential(*layers)


def calc_mean_std(feat, eps=1e-5):
    n, c = feat.size()[:2]
    var = feat.view(n, c, -1).var(dim=2) + eps
    return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def adaptive_instance_normalization(content_feat, style_feat):
    size = content_feat.size()
    style_mean, style_std = calc_mean_std(style_feat)
    content_mean, content_std = calc_mean_std(content_feat)
    normalized = (content_feat - content_mean.expand(size)) / content_std.expand(size)
    return normalized * style_std.expand(size) + style_mean.expand(size)


def adain_style_transfer(vgg, decoder, content, style, alpha=1.0):
    """One pair, as research code does it: both images encoded every call."""
    with torch.no_grad():
        content_f = vgg(content)
        style_f = vgg(style)
        feat = adaptive_instance_normalization(content_f, style_f)
        feat = feat * alpha + content_f * (1 - alpha)
        return decoder(feat)


def adain_train_step(vgg_slices, decoder, optimizer, content, style, style_weight=10.0):
    """One pytorch-AdaIN training step (encoder slices to relu1_1..relu4_1, decoder trained)."""

    def encode_with_intermediate(x):
        results = [x]
        for s in vgg_slices:
            results.append(s(results[-1]))
        return results[1:]

    style_feats = encode_with_intermediate(style)
    content_feat = encode_with_intermediate(content)[-1]
    t = adaptive_instance_normalization(content_feat, style_feats[-1])
    g = decoder(t)
    g_feats = encode_with_intermediate(g)
    loss_c = F.mse_loss(g_feats[-1], t)
    loss_s = 0.0
    for gf, sf in zip(g_feats, style_feats):
        gm, gs = calc_mean_std(gf)
        sm, ss = calc_mean_std(sf)
        loss_s = loss_s + F.mse_loss(gm, sm) + F.mse_loss(gs, ss)
    loss = loss_c + style_weight * loss_s
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def adain_vgg_slices(vgg: nn.Sequential) -> list[nn.Sequential]:
    return [vgg[:4], vgg[4:11], vgg[11:18], vgg[18:31]]


# --- Gatys et al. with L-BFGS, single scale ---------------------------------------------------

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
STYLE_INDICES = [1, 6, 11, 20, 29]  # relu1_1 relu2_1 relu3_1 relu4_1 relu5_1 in torchvision's vgg19
CONTENT_INDEX = 22  # relu4_2


def vgg19_features() -> nn.Sequential:
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
    layers, cin = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
            cin = v
    return nn.Sequential(*layers)


def gram(f):
    b, c, h, w = f.size()
    x = f.view(b * c, h * w)
    return torch.mm(x, x.t()) / (h * w)


def extract(vgg, x, upto):
    feats = {}
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    for i, layer in enumerate(vgg):
        x = layer(x)
        if i in STYLE_INDICES or i == CONTENT_INDEX:
            feats[i] = x
        if i == upto:
            break
    return feats


def gatys_objective(vgg, content, style, style_weight, content_weight, tv_weight):
    """The same objective as the package's default (normalised Gram), written out plainly."""
    upto = max(STYLE_INDICES + [CONTENT_INDEX])
    with torch.no_grad():
        cf = extract(vgg, content, upto)
        sf = extract(vgg, style, upto)
        targets = {i: gram(sf[i]) for i in STYLE_INDICES}
        content_target = cf[CONTENT_INDEX]
        content_norm = 0.5 * (content_target**2).sum()
        style_norms = {}
        for i in STYLE_INDICES:
            c = cf[i].shape[1]
            style_norms[i] = ((gram(cf[i]) - targets[i]) ** 2).sum() / (4 * c * c)

    def objective(x):
        f = extract(vgg, x, upto)
        content_loss = 0.5 * ((f[CONTENT_INDEX] - content_target) ** 2).sum() / content_norm
        style_loss = 0
        for i in STYLE_INDICES:
            c = f[i].shape[1]
            style_loss = style_loss + ((gram(f[i]) - targets[i]) ** 2).sum() / (4 * c * c) / style_norms[i] / len(STYLE_INDICES)
        dh = ((x[..., 1:, :] - x[..., :-1, :]) ** 2).sum()
        dw = ((x[..., :, 1:] - x[..., :, :-1]) ** 2).sum()
        tv = (dh + dw) / x[0].numel()
        return content_weight * content_loss + style_weight * style_loss + tv_weight * tv

    return objective


def gatys_lbfgs(vgg, content, style, steps, style_weight=20.0, content_weight=1.0, tv_weight=1e-3):
    """Single-scale L-BFGS from the content image; returns (image, [(seconds, objective)])."""
    objective = gatys_objective(vgg, content, style, style_weight, content_weight, tv_weight)
    x = content.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([x], lr=1, max_iter=steps, max_eval=steps, tolerance_grad=0.0,
                                  tolerance_change=0.0, history_size=50)
    trace, start = [], time.perf_counter()

    def closure():
        optimizer.zero_grad()
        loss = objective(x)
        loss.backward()
        trace.append((time.perf_counter() - start, loss.item()))
        return loss

    optimizer.step(closure)
    return x.detach().clamp(0, 1), trace


# --- Magenta (Ghiasi et al.) as a straightforward PyTorch port runs it -------------------------------


def naive_conditional_instance_norm(x, scale, shift, eps):
    """The conditional instance norm written out as in the paper: six passes over x."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * scale[..., None, None] + shift[..., None, None]


def magenta_naive(predictor: nn.Module, transformer: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Copies of the networks in NCHW fp32 whose norms use ``naive_conditional_instance_norm``."""
    import copy
    import types

    from styletransfer.magenta.networks import StyleNorm

    predictor = copy.deepcopy(predictor).float().to(memory_format=torch.contiguous_format).eval()
    transformer = copy.deepcopy(transformer).float().to(memory_format=torch.contiguous_format).eval()
    for module in transformer.modules():
        if isinstance(module, StyleNorm):
            module.forward = types.MethodType(
                lambda self, x, e: naive_conditional_instance_norm(x, self.scale(e), self.shift(e), self.eps), module)
    return predictor, transformer


def magenta_style_transfer(predictor, transformer, content, style):
    """content (1, 3, H, W), style (1, 3, h, w) → (1, 3, H, W): the style embedded, the content
    reflect-padded to a multiple of 4 and transformed, the padding cropped off."""
    height, width = content.shape[-2:]
    padded = F.pad(content, (0, -width % 4, 0, -height % 4), mode="reflect")
    with torch.no_grad():
        return transformer(padded, predictor(style))[..., :height, :width]
