"""The optimisation stylizer's speed levers: steps per scale and bfloat16 convolutions."""

from __future__ import annotations

import warnings

import pytest
import torch
from click.testing import CliRunner
from conftest import write_image

from styletransfer.cli import main
from styletransfer.errors import UsageError
from styletransfer.optimize import Objective, StylizeConfig, stylize
from styletransfer.precision import PrecisionWarning

SMALL = dict(style_layers=("relu1_1", "relu2_1", "relu3_1"), content_layers=("relu3_2",))


def images(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, 40, 60, generator=g), torch.rand(3, 50, 50, generator=g) ** 2


def test_steps_per_scale(encoder):
    content, style = images()
    config = StylizeConfig(scales=(24, 48), steps_per_scale=(5, 2), optimizer="adam", **SMALL)
    result = stylize(content, style, encoder, config)
    assert [h["size"] for h in result.history] == [24] * 5 + [48] * 2
    assert config.scale_steps() == (5, 2) and StylizeConfig(scales=(24, 48), steps=3).scale_steps() == (3, 3)
    for bad, needle in (({"steps_per_scale": (5,)}, "one per scale"), ({"steps_per_scale": (5, 0)}, "≥ 1")):
        with pytest.raises(UsageError, match=needle):
            StylizeConfig(scales=(24, 48), **bad).validate()


def test_bf16_objective_is_float32_and_consistent(encoder):
    """bf16 convolutions, float32 losses: on the content image itself every normalised style term
    is exactly 1 and the content loss 0, as in float32; the features reaching the losses are float32."""
    content, style = images()
    c, s = content.unsqueeze(0), style.unsqueeze(0)
    config = StylizeConfig(precision="bf16", style_weight=3.0, tv_weight=0.0, **SMALL).validate()
    objective = Objective(encoder, c, [s], config, torch.Generator().manual_seed(0))
    assert all(f.dtype == torch.float32 for f in objective.features(c, ("relu1_1", "relu3_2")).values())
    total, record = objective(c)
    assert record["content"] == 0.0 and record["style"] == pytest.approx(1.0, rel=1e-5)
    assert total.dtype == torch.float32
    fp32 = Objective(encoder, c, [s], StylizeConfig(style_weight=3.0, tv_weight=0.0, **SMALL).validate(),
                     torch.Generator().manual_seed(0))
    x = c.flip(-1)  # away from the content: the two objectives agree to bfloat16 rounding
    assert objective(x)[0].item() == pytest.approx(fp32(x)[0].item(), rel=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        result = stylize(content, style, encoder, StylizeConfig(precision="bf16", scales=(32,), steps=4, **SMALL))
    assert result.history[-1]["total"] < result.history[0]["total"] and result.image.dtype == torch.float32


def test_cli_steps_per_scale_and_precision(tmp_path):
    content = write_image(tmp_path / "c.png", 40, 30, seed=1)
    style = write_image(tmp_path / "s.png", 30, 30, seed=2)
    common = ["stylize", content, style, "--weights", "random", "--style-layers", "relu1_1,relu2_1",
              "--content-layers", "relu2_2", "--no-progress"]
    out = tmp_path / "out.png"
    result = CliRunner().invoke(main, [str(a) for a in [*common, "-o", out, "--scales", "24,32",
                                                        "--steps-per-scale", "3,2", "--precision", "bf16",
                                                        "--report", tmp_path / "r.json"]])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert [h["size"] for h in report["history"]].count(32) <= 2 and report["config"]["precision"] == "bf16"
    assert report["config"]["steps_per_scale"] == [3, 2]
    bad = CliRunner().invoke(main, [str(a) for a in [*common, "-o", tmp_path / "x.png", "--scales", "24,32",
                                                     "--steps-per-scale", "3"]])
    assert bad.exit_code == 2 and "one per scale" in bad.output
    adain_flag = CliRunner().invoke(main, [str(a) for a in [*common, "-o", tmp_path / "y.png", "--tile-halo", "64"]])
    assert adain_flag.exit_code == 2 and "--method adain only" in adain_flag.output
    feedforward_flag = CliRunner().invoke(main, [str(a) for a in [*common, "-o", tmp_path / "y.png", "--tile-size",
                                                                  "64"]])
    assert feedforward_flag.exit_code == 2 and "--method adain and magenta only" in feedforward_flag.output
