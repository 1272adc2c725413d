"""The stylisation methods: each registry entry builds what it names and carries its properties.

``optimize`` runs any registered style loss (or a weighted fusion) by iterative optimisation
(:func:`styletransfer.optimize.stylize`); the others are feed-forward: the entry builds the
method's :class:`~styletransfer.realtime.Stylizer` from a config and the
:class:`~styletransfer.realtime.Networks` it needs. Every front end (``stylize``, ``serve``,
``compare``, ``stylize-dataset``, clips) asks the entry for the stylizer, the config class, the
default sizes, and whether the method tiles, needs an encoder, a decoder or style images; none
branches on a method's name. Adding a method: one module (its config and its stylizer) and one
:func:`register` call below.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from .adain.stylizer import AdaINConfig, AdaINStylizer
from .cin.stylizer import CINConfig, parse_style_index
from .cin.stylizer import load_stylizer as load_cin
from .cin.weights import network_info as cin_networks
from .errors import UsageError
from .magenta.stylizer import MagentaConfig
from .magenta.stylizer import load_stylizer as load_magenta
from .magenta.weights import networks_info as magenta_networks
from .optimize import StylizeConfig
from .realtime import Networks, Stylizer, own_networks
from .registry import Registry
from .wct.stylizer import WCTConfig, WCTStylizer

Build = Callable[[Any, Networks, torch.device], Stylizer]  # (config, networks, device) → the stylizer


@dataclass(frozen=True)
class Method:
    name: str
    summary: str  # one line, for --help
    config: type  # the config dataclass (validate(), to_dict()); StylizeConfig for optimize
    build: Build | None = None  # a feed-forward method's stylizer; None: per-image optimisation
    needs_encoder: bool = False  # runs on the --weights encoder (magenta and cin bring their own networks)
    needs_decoder: bool = False  # runs only with a trained decoder (--decoder; a shipped one serves vgg19)
    # built-in styles, no style image: --style-index text → config fields (cin); None: takes style images
    style_index: Callable[[str], dict] | None = None
    # config fields under which it stylises images at the size they come in (compare's working images)
    compare_fields: Mapping[str, Any] = field(default_factory=dict)
    # the networks it brings (pinned files), described without loading them; None: --weights/--decoder's
    shipped: Callable[[], dict] | None = None

    @property
    def feedforward(self) -> bool:
        """One pass through trained networks, no per-image optimisation."""
        return self.build is not None

    @property
    def style_images(self) -> bool:
        return self.style_index is None

    @property
    def encoder(self) -> bool:
        """``needs_encoder``, by its earlier name."""
        return self.needs_encoder

    def reads(self, name: str) -> bool:
        """Whether its config has the field ``name`` (a flag setting it is read by this method)."""
        return any(f.name == name for f in dataclasses.fields(self.config))

    @property
    def tiles(self) -> bool:
        """Stylises large images in tiles (``--tile-size``); WCT transforms the whole map at once."""
        return self.reads("tile_size")

    @property
    def content_size(self) -> int | None:
        """The default shorter side of contents (0: their own size); None for an optimisation."""
        return self.default("content_size")

    @property
    def style_size(self) -> int | None:
        """The default shorter side of style images; None where there are none (or for an optimisation)."""
        return self.default("style_size")

    def default(self, name: str):
        """The default of its config field ``name``; None when the config has no such field."""
        found = [f for f in dataclasses.fields(self.config) if f.name == name]
        return found[0].default if found else None

    def make_config(self, **fields):
        """Its config with those of ``fields`` it has and that are not None (the rest: defaults)."""
        return self.config(**{name: value for name, value in fields.items()
                              if value is not None and self.reads(name)})

    def stylizer(self, config=None, networks: Networks | None = None,
                 device: torch.device | str = "cpu") -> Stylizer:
        """The feed-forward stylizer on a validated ``config`` (None: the defaults)."""
        config = self.check_config(config)
        return self.build(config, networks or Networks(), torch.device(device))

    def check_config(self, config):
        """``config`` (None: the defaults) validated, after checking it is this method's."""
        config = self.config() if config is None else config
        if not isinstance(config, self.config):
            raise UsageError(f"--method {self.name} takes a {self.config.__name__}, not a {type(config).__name__}")
        return config.validate()


METHODS: Registry[Method] = Registry("method")


def register(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS`: every front end offers it from then on."""
    return METHODS.register(method.name)(method)


def unregister(name: str) -> Method:
    """Take a method out of :data:`METHODS` again (a plugin unloaded, a test's toy method)."""
    return METHODS.unregister(name)


_SIZES_AS_GIVEN = {"content_size": 0, "style_size": 0}
for _method in (
    Method("optimize", "iterative optimisation of the image (Gatys et al.) under --loss", StylizeConfig,
           needs_encoder=True),
    Method("adain", "one pass through an AdaIN decoder (Huang & Belongie)", AdaINConfig, AdaINStylizer.from_networks,
           needs_encoder=True, needs_decoder=True, compare_fields={**_SIZES_AS_GIVEN, "tile_size": 0}),
    Method("wct", "whitening and colouring of relu4_1 (the style's mean and covariance), then an AdaIN decoder "
           "(Li et al.)", WCTConfig, WCTStylizer.from_networks, needs_encoder=True, needs_decoder=True,
           compare_fields=_SIZES_AS_GIVEN),
    # the predictor was trained on 256-pixel styles: compare keeps the style size
    Method("magenta", "one pass through Magenta's style predictor and transformer (Ghiasi et al.)", MagentaConfig,
           own_networks(load_magenta), compare_fields={"content_size": 0}, shipped=magenta_networks),
    Method("cin", "one pass through a network with 26 built-in styles chosen or blended with --style-index, no "
           "style image (conditional instance norm, Dumoulin et al.)", CINConfig, own_networks(load_cin),
           style_index=parse_style_index, shipped=cin_networks),
):
    register(_method)
del _method


def feedforward_methods(*, style_images: bool | None = None) -> list[str]:
    """The feed-forward methods; with ``style_images`` only those that take style images (True)
    or only those that do not (False)."""
    return [name for name, method in METHODS.items()
            if method.feedforward and style_images in (None, method.style_images)]
