"""The command line, end to end on tiny random-weight runs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from styletransfer.cli import main
from styletransfer.imageio import read_metadata
from styletransfer.losses import STYLE_LOSSES

FAST = ["--weights", "random", "--size", "48", "--steps", "6", "--no-progress",
        "--style-layers", "relu1_1,relu2_1,relu3_1", "--content-layers", "relu3_2"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("loss", STYLE_LOSSES.names())
def test_stylize_every_loss_writes_image_and_report(tmp_path, image_pair, loss):
    content, style = image_pair
    out, report = tmp_path / "out" / "result.png", tmp_path / "r.json"
    result = run("stylize", content, style, "-o", out, "--loss", loss, "--report", report, *FAST)
    assert result.exit_code == 0, result.output
    assert "not representative" in result.output  # random weights always warn
    width, height = Image.open(out).size
    assert (width, height) == (48, 32)  # long edge --size, the content's 3:2 aspect
    data = json.loads(report.read_text())
    assert data["history"][-1]["total"] < data["history"][0]["total"]
    assert data["weights"]["source"] == "random:0" and data["config"]["losses"] == [[loss, 1.0]]
    assert read_metadata(out)["config"]["losses"] == [[loss, 1.0]]


def test_documented_done_when_command_at_128px(tmp_path):
    """The issue's acceptance command, on the shipped sample images."""
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    result = run("stylize", "assets/content/chelsea.jpg", "assets/style/mosaic.jpg", "-o", out, "--loss", "mmd-rbf",
                 "--weights", "random", "--size", 128, "--steps", 20, "--report", report, "--no-progress")
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (128, 85)  # chelsea is 451x300
    history = json.loads(report.read_text())["history"]
    assert history[-1]["total"] < history[0]["total"]


def test_fusion_blend_scales_jpeg(tmp_path, image_pair):
    content, style = image_pair
    out = tmp_path / "fused.jpg"
    result = run("stylize", content, "--style", style, "--style", content, "--style-blend", "0.7,0.3",
                 "--loss", "gram:0.5,bn-stats:0.5", "--loss", "mmd-poly:1", "--loss-param", "mmd-poly.c=1",
                 "--scales", "32,48", "--optimizer", "adam", "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    assert Image.open(out).format == "JPEG"
    config = read_metadata(out)["config"]
    assert config["losses"] == [["gram", 0.5], ["bn-stats", 0.5], ["mmd-poly", 1.0]]
    assert config["loss_options"] == {"mmd-poly": {"c": 1}} and config["scales"] == [32, 48]


def test_refuses_to_overwrite_an_input(tmp_path, image_pair):
    content, style = image_pair
    before = content.read_bytes()
    result = run("stylize", content, style, "-o", content, *FAST)
    assert result.exit_code == 2 and "input" in result.output
    assert content.read_bytes() == before


@pytest.mark.parametrize("flags,needle", [
    (["--loss", "gramm"], "did you mean 'gram'"),
    (["--steps", "-3"], "--steps"),
    (["--style-blend", "0.7,x"], "not a number"),
    (["--loss", "gram:abc"], "not a number"),
    (["--style-layers", "relu1_1,,relu2_1"], "empty entry"),
    (["--scales", "256,8"], "minimum"),
])
def test_bad_flags_are_usage_errors(tmp_path, image_pair, flags, needle):
    content, style = image_pair
    out = tmp_path / "o.png"
    result = run("stylize", content, style, "-o", out, *FAST, *flags)
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_imagenet_weights_offline_is_one_line_error(tmp_path, image_pair, monkeypatch):
    import torch.hub

    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("Name or service not known")))
    content, style = image_pair
    result = run("stylize", content, style, "-o", tmp_path / "o.png", "--size", 32, "--steps", 1,
                 "--weights", "imagenet")
    assert result.exit_code == 1 and not (tmp_path / "o.png").exists()
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--weights" in errors[0] and "Traceback" not in result.output


def test_losses_command_lists_the_registry():
    result = run("losses")
    assert result.exit_code == 0
    for name in STYLE_LOSSES.names():
        assert name in result.output
    assert "formula" in result.output


def test_stylize_and_compare_share_their_options_and_the_configs_defaults():
    """Declared once (cli/options.py): the same help and the StylizeConfig defaults in both
    commands (compare's --weights help had drifted from stylize's)."""
    import dataclasses

    from styletransfer.cli.compare import compare_command
    from styletransfer.cli.stylize import stylize_command
    from styletransfer.optimize import StylizeConfig

    defaults = {f.name: f.default for f in dataclasses.fields(StylizeConfig)}
    params = [{p.name: p for p in command.params} for command in (stylize_command, compare_command)]
    for name in ("weights", "pooling", "device", "optimizer", "lr", "steps", "size", "style_layers", "content_layers",
                 "style_weight", "content_weight", "tv_weight", "loss_param", "seed", "max_pixels", "progress"):
        stylize_param, compare_param = (p[name] for p in params)
        owners = getattr(stylize_param, "methods", None)  # stylize prefixes "[optimize] " to method-owned help
        prefix = f"[{', '.join(owners)}] " if owners else ""
        expected = (prefix + (compare_param.help or "")).strip()
        assert stylize_param.help == expected or stylize_param.help == compare_param.help, name
        assert stylize_param.default == compare_param.default, name
    for name in ("steps", "optimizer", "style_weight", "content_weight", "tv_weight", "seed"):
        assert params[0][name].default == defaults[name], name
    assert params[0]["size"].default == defaults["scales"][-1]
    assert "magenta" in params[1]["weights"].help


def test_every_method_option_is_refused_for_the_methods_that_do_not_read_it():
    """Ownership is declared on each option (cli.options.MethodOption): each one given on the
    command line with another --method is a usage error naming the methods that read it."""
    import click

    from styletransfer.cli.options import MethodOption, reject_other_method_options
    from styletransfer.cli.stylize import stylize_command
    from styletransfer.errors import UsageError
    from styletransfer.methods import METHODS

    owned = [p for p in stylize_command.params if isinstance(p, MethodOption)]
    assert {p.name for p in owned} >= {"decoder", "alpha", "steps", "losses", "weights", "tile_halo", "seed"}
    for param in owned:
        assert set(param.methods) <= set(METHODS.names()) and param.help.startswith(f"[{', '.join(param.methods)}]")
        ctx = click.Context(stylize_command)
        ctx.set_parameter_source(param.name, click.core.ParameterSource.COMMANDLINE)
        for method in METHODS.names():
            if method in param.methods:
                reject_other_method_options(ctx, method)  # accepted
            else:
                with pytest.raises(UsageError, match=f"{param.opts[0]} applies to --method"):
                    reject_other_method_options(ctx, method)
    shared = {p.name for p in stylize_command.params if not isinstance(p, MethodOption)}
    assert {"device", "precision", "preserve_color", "mask", "method"} <= shared
