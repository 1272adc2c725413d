"""``styletransfer serve``: the local web page (the optional ``web`` extra)."""

from __future__ import annotations

import click

from ..adain.decoder import default_decoder
from ..imageio import DEFAULT_MAX_PIXELS
from ..web import require_web_extra
from ..web.settings import MIB, ServerSettings, default
from . import options


@click.command("serve")
@click.option("--host", default=default("host"), show_default=True,
              help="Address to listen on. The default is reachable from this machine only; another address "
                   "(0.0.0.0: every interface) exposes the page, and its jobs, to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=default("port"), show_default=True)
@options.encoder()
@click.option("--decoder", type=click.Path(), default=None,
              help="AdaIN decoder (.safetensors or pytorch-AdaIN's decoder.pth): adds the methods adain and wct.")
@click.option("--workers", type=click.IntRange(min=1), default=default("workers"), show_default=True,
              help="Jobs run at once (more than one needs a GPU).")
@click.option("--queue", "queue_size", type=click.IntRange(min=1), default=default("queue_size"), show_default=True,
              help="Jobs that may wait; when they are all taken the page is told at once that the server is busy.")
@click.option("--max-upload-mb", type=click.IntRange(min=1), default=default("max_upload_bytes") // MIB,
              show_default=True, help="Largest uploaded image, in MiB.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Refuse larger images (as stylize --max-pixels).")
@click.option("--max-size", type=click.IntRange(min=16), default=default("max_size"), show_default=True,
              help="Largest size a request may ask for (optimisation: output long edge; feed-forward: content "
                   "short side).")
@click.option("--max-steps", type=click.IntRange(min=1), default=default("max_steps"), show_default=True,
              help="Most optimisation steps a request may ask for.")
def serve_command(host, port, weights, pooling, device, decoder, workers, queue_size, max_upload_mb, max_pixels,
                  max_size, max_steps) -> None:
    """Serve a page to stylise a pair under the methods and formulations, watch it work and compare them.

    Open the address it prints in a browser. Uploads and results live in a temporary folder that
    is deleted when the server stops (Ctrl+C).
    """
    require_web_extra()
    if decoder is None:
        shipped = default_decoder(weights)  # the default encoder's shipped decoder adds adain and wct
        decoder = None if shipped is None else str(shipped)
    settings = ServerSettings(host=host, port=port, weights=weights, pooling=pooling, decoder=decoder,
                              device=device, workers=workers, queue_size=queue_size,
                              max_upload_bytes=max_upload_mb * MIB, max_pixels=max_pixels, max_size=max_size,
                              max_steps=max_steps).validate()
    from ..web.server import serve

    if settings.exposed:
        click.echo(f"warning: --host {host} exposes the page to the network: anyone who reaches this machine can "
                   "upload images and run jobs", err=True)
    click.echo(f"styletransfer: open {settings.url} in a browser (Ctrl+C stops the server)")
    serve(settings)
