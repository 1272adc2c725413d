"""A method is one entry: every front end takes its methods from ``METHODS``, so a method
registered from outside (here a toy one, defined in this file) is offered and run by the
stylize command, the web form, compare and stylize-dataset alike."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from typing import Sequence

import pytest
import torch
from click.testing import CliRunner
from conftest import write_image
from torch import Tensor

from styletransfer import color
from styletransfer.api import RunOptions, feedforward_files
from styletransfer.cli import main
from styletransfer.compare import CompareConfig, compare_files, select_methods
from styletransfer.errors import UsageError
from styletransfer.imageio import load_image, read_metadata
from styletransfer.methods import METHODS, Method, feedforward_methods, register, unregister
from styletransfer.optimize import StylizeConfig
from styletransfer.realtime import (
    Networks,
    Stylizer,
    check_batch,
    check_feedforward_settings,
    finish_batch,
    prepare_image,
    weighted_average,
)
from styletransfer.web.forms import page_methods, page_options, parse_job
from styletransfer.web.settings import ServerSettings

# -- the toy method: one module's worth (a config and a stylizer) --------------------------------


@dataclass
class ToyConfig:
    alpha: float = 1.0
    style_weights: tuple[float, ...] | None = None
    preserve_color: str = color.NONE
    content_size: int = 0
    style_size: int = 0
    crop: bool = False
    precision: str = "fp32"

    def validate(self) -> "ToyConfig":
        check_feedforward_settings(self)
        return self

    def to_dict(self) -> dict:
        return asdict(self)


class ToyStylizer:
    """Moves the content's mean colour to the style's: a style is its mean colour (3,)."""

    representation_type = Tensor
    uses_own_style = False

    def __init__(self, config: ToyConfig) -> None:
        self.config = config.validate()

    @classmethod
    def from_networks(cls, config: ToyConfig, networks: Networks, device: torch.device) -> "ToyStylizer":
        return cls(config)

    def represent_style(self, style: Tensor, content: Tensor | None = None) -> Tensor:
        return prepare_image(style, self.config.style_size, self.config.crop).mean(dim=(-2, -1))  # (3,)

    def stylize(self, content: Tensor, styles: Sequence = (), *, mask: Tensor | None = None) -> Tensor:
        colours = [s if s.dim() == 1 else self.represent_style(s) for s in styles]
        return self._shift(prepare_image(content, self.config.content_size, self.config.crop)[None],
                           weighted_average(colours, self.config.style_weights))[0]

    def stylize_batch(self, contents: Tensor, styles: Sequence[Sequence], *, own_styles=None) -> Tensor:
        count = check_batch(self.config, contents, styles)
        outputs = torch.cat([self._shift(content[None], colour) for content, group in zip(contents, styles)
                             for colour in group])  # (B·K, 3, H, W)
        return finish_batch(outputs, contents, count, self.config.preserve_color)

    def _shift(self, contents: Tensor, colour: Tensor) -> Tensor:
        shifted = contents - contents.mean(dim=(-2, -1), keepdim=True) + colour[:, None, None]  # (N, 3, H, W)
        return (self.config.alpha * shifted + (1 - self.config.alpha) * contents).clamp(0, 1)

    def describe(self) -> dict:
        return {"networks": "none"}

    def check_temporal(self, frame: Tensor) -> None:
        pass


# -- ... and one entry ---------------------------------------------------------------------------


@pytest.fixture
def toy():
    method = register(Method("toy", "the content's mean colour moved to the style's", ToyConfig,
                             ToyStylizer.from_networks))
    yield method
    unregister("toy")
    assert "toy" not in METHODS


@pytest.fixture
def pair(tmp_path):
    return write_image(tmp_path / "content.png", 40, 30, seed=1), write_image(tmp_path / "style.png", 32, 32, seed=2)


def test_the_toy_is_a_stylizer():
    stylizer: Stylizer = ToyStylizer(ToyConfig())
    image = torch.rand(3, 20, 24)
    assert stylizer.stylize(image, [torch.rand(3, 8, 8)]).shape == (3, 20, 24)


def test_a_registered_method_is_seen_by_every_front_end(toy, pair, tmp_path):
    content, style = pair
    runner = CliRunner()
    # stylize: --method accepts it, and it runs with the options its config has
    out = tmp_path / "toy.png"
    result = runner.invoke(main, ["stylize", str(content), str(style), "-o", str(out), "--method", "toy",
                                  "--alpha", "0.5", "--crop", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert load_image(out).shape == (3, 30, 30) and read_metadata(out)["method"] == "toy"
    assert read_metadata(out)["config"]["alpha"] == 0.5 and read_metadata(out)["networks"] == "none"
    refused = runner.invoke(main, ["stylize", str(content), str(style), "-o", str(out), "--method", "toy",
                                   "--tile-size", "64"])  # its config has no tile_size
    assert refused.exit_code == 2 and "--tile-size applies to --method adain and magenta only" in refused.output
    # the web form
    settings = ServerSettings()
    assert "toy" in page_methods() and "toy" in [m["name"] for m in page_options(settings)["methods"]]
    request = parse_job({"method": "toy", "alpha": "0.25", "preserve_color": "luminance"}, settings)
    assert request.config == ToyConfig(alpha=0.25, preserve_color="luminance", content_size=StylizeConfig().scales[-1])
    assert request.preserve_color == "luminance"
    # compare's method selection, and a comparison that runs it
    assert "toy" in select_methods() and select_methods(only=("toy",)) == ("toy",)
    config = CompareConfig(stylize=StylizeConfig(scales=(32,), steps=1), methods=("toy",), judge=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        report = compare_files(content, style, tmp_path / "compare", config, weights="random:0")
    assert list(report["runs"]) == ["toy"] and (tmp_path / "compare" / "toy.png").is_file()
    # stylize-dataset: a batch at a time, each style represented once
    contents, styles = tmp_path / "contents", tmp_path / "styles"
    contents.mkdir(), styles.mkdir()
    for index in range(3):
        write_image(contents / f"c{index}.png", 24, 20, seed=index)
    write_image(styles / "s.png", 16, 16, seed=9)
    result = runner.invoke(main, ["stylize-dataset", str(contents), str(styles), "-o", str(tmp_path / "data"),
                                  "--method", "toy", "--workers", "0", "--style-cache", "none", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "3 written" in result.output and (tmp_path / "data" / "c1.png").is_file()


def test_the_api_runs_a_registered_method_and_checks_its_config(toy, pair, tmp_path):
    content, style = pair
    report = tmp_path / "report.json"
    run = feedforward_files("toy", content, [style, style], tmp_path / "out.png", ToyConfig(style_weights=(1, 3)),
                            options=RunOptions(report=report))
    assert run.outputs[0].size == (40, 30) and run.style_statistics_computed == 1
    assert json.loads(report.read_text())["method"] == "toy"
    with pytest.raises(UsageError, match="--method toy takes a ToyConfig, not a StylizeConfig"):
        feedforward_files("toy", content, [style], tmp_path / "bad.png", StylizeConfig())
    with pytest.raises(UsageError, match="--alpha must be between 0 and 1"):
        feedforward_files(toy, content, [style], tmp_path / "bad.png", ToyConfig(alpha=2.0))
    assert not (tmp_path / "bad.png").exists()


def test_an_unregistered_method_is_gone_from_the_command_line(pair, tmp_path):
    content, style = pair
    result = CliRunner().invoke(main, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
                                       "--method", "toy"])
    assert result.exit_code == 2 and "'toy' is not one of" in result.output


# -- what every registered method carries ---------------------------------------------------------


@pytest.mark.parametrize("name", feedforward_methods())
def test_each_feedforward_entry_knows_its_config_and_sizes(name):
    method = METHODS.get(name)
    config = method.config().validate()
    assert method.content_size == config.content_size and method.reads("alpha")
    assert (method.style_size is not None) == method.style_images == method.reads("style_size")
    assert method.make_config(**method.compare_fields).validate() is not None
    assert method.tiles == hasattr(config, "tile_size")
    assert method.shipped is None or isinstance(method.shipped(), dict)


def test_the_old_names_stay():
    from styletransfer.adain.stylizer import AdaINStylizer
    from styletransfer.api import AdaINOutput, AdaINRun, FeedforwardOutput, FeedforwardRun
    from styletransfer.magenta.stylizer import MagentaStylizer

    assert AdaINRun is FeedforwardRun and AdaINOutput is FeedforwardOutput
    assert AdaINStylizer.style_statistics is AdaINStylizer.represent_style
    assert MagentaStylizer.style_embedding is MagentaStylizer.represent_style
    assert METHODS.get("cin").encoder is False and METHODS.get("adain").encoder is True


def test_the_deprecated_file_functions_forward_to_feedforward_files(monkeypatch, tmp_path):
    from styletransfer import api

    calls = []
    monkeypatch.setattr(api, "feedforward_files", lambda *args, **kwargs: calls.append((args, kwargs)))
    with pytest.warns(DeprecationWarning, match="feedforward_files"):
        api.wct_files("c.png", ["s.png"], "o.png", decoder="d.pth", weights="random:0", device="cpu")
    with pytest.warns(DeprecationWarning):
        api.cin_files("c.png", "o.png", max_pixels=10)
    (args, kwargs), (cin_args, cin_kwargs) = calls
    assert args[0] == "wct" and kwargs["networks"] == Networks(weights="random:0", decoder="d.pth")
    assert kwargs["device"] == "cpu" and cin_args[:3] == ("cin", "c.png", ()) and cin_kwargs == {"max_pixels": 10}
