"""``compare --content-dir DIR --style-dir DIR``: every pair compared, then aggregated with 95% intervals.

One comparison (``run.compare_files``) per (content, style) pair, each in its own sub-folder
``<content stem>__<style stem>``; the encoder is loaded once. ``aggregate`` is pure: per method
and per column (each registered loss's normalised value, the judge, the content loss) the mean
over pairs with its 95% t-interval (``styletransfer.intervals``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import torch

from ..errors import UsageError
from ..files import atomic_write_json, atomic_write_text
from ..imageio import DEFAULT_MAX_PIXELS, list_images
from ..intervals import format_interval, mean_interval
from ..markdown import markdown_table
from ..weights import DEFAULT_ENCODER
from .judge import NAME as JUDGE
from .report import method_label
from .selection import CompareConfig

SUMMARY_JSON, SUMMARY_MD = "summary.json", "summary.md"
CALIBRATED_PAIRS_NOTE = ("calibrated strength: in every pair, each optimisation method's style weight was chosen "
                         "so that its content loss matches the first method's in that pair (the targets and every "
                         "weight tried are in each pair's report); the content-loss column shows how close it came")
MAX_PAIRS = 400  # refuse larger folder products: each pair is a whole comparison


def pair_name(content: Path, style: Path) -> str:
    return f"{content.stem}__{style.stem}"


def aggregate(reports: Mapping[str, Mapping]) -> dict:
    """Means and 95% intervals over pairs of each method's normalised losses, judge and content loss."""
    if not reports:
        raise ValueError("no comparisons to aggregate")
    first = next(iter(reports.values()))
    methods, losses = first["matrix"]["methods"], first["matrix"]["losses"]
    for name, report in reports.items():
        if report["matrix"]["methods"] != methods or report["matrix"]["losses"] != losses:
            raise ValueError(f"pair {name} compared other methods or losses than the first pair")
    columns = [*losses, *([JUDGE] if all(r.get("judge") for r in reports.values()) else [])]

    def values(method: str, column: str) -> list[float]:
        if column == JUDGE:
            return [r["judge"][method] for r in reports.values()]
        return [r["matrix"]["normalized"][method][column] for r in reports.values()]

    return {
        "pairs": list(reports),
        "methods": methods,
        "columns": columns,
        "merged": first.get("merged", {}),
        "normalized": {m: {c: mean_interval(values(m, c)) for c in columns} for m in methods},
        "content_loss": {m: mean_interval(r["runs"][m]["content_loss"] for r in reports.values()) for m in methods},
        "own_loss_below_one": {m: sum(r["matrix"]["normalized"][m][m] < 1 for r in reports.values())
                               for m in methods if m in losses},
        "encoder": first["encoder"],
        "config": first["config"],
        "notes": pair_notes([r["notes"] for r in reports.values()]),
    }


def pair_notes(notes: list[list[str]]) -> list[str]:
    """The pairs' notes once each; the calibration note, whose target differs per pair, once in
    general words (each pair's report keeps its own)."""
    calibrated = any(note.startswith("calibrated strength") for pair in notes for note in pair)
    kept = [note for pair in notes for note in pair if not note.startswith("calibrated strength")]
    return [*([CALIBRATED_PAIRS_NOTE] if calibrated else []), *dict.fromkeys(kept)]


def render_summary(summary: Mapping, command: str) -> str:
    pairs = summary["pairs"]
    lines = ["# Style-loss comparison over image pairs", "", "```", command, "```", "",
             f"- {len(pairs)} pairs (content × style), each compared in its own folder: "
             + ", ".join(f"[{p}]({p}/report.md)" for p in pairs),
             f"- encoder: `{summary['encoder']['source']}`", ""]
    lines += [line for note in summary["notes"] for line in (f"> **Note:** {note}", "")]
    lines += ["## Cross-loss matrix, mean ± 95% interval over pairs", "",
              "Rows: the method used to stylise; columns: the loss measuring the output's distance to the style, "
              "normalised by the content image's (1 = no closer than the content), and the independent judge. "
              "Intervals: Student's t over the pairs.", ""]
    rows = [[method_label(m, summary["merged"]), *(format_interval(summary["normalized"][m][c]) for c in summary["columns"]),
             format_interval(summary["content_loss"][m])] for m in summary["methods"]]
    lines += [markdown_table(["method \\ measured by", *[f"`{c}`" for c in summary["columns"]], "content loss"], rows), ""]
    own = summary["own_loss_below_one"]
    if own:
        lines += ["Own loss below the content image's: " + ", ".join(f"`{m}` {k}/{len(pairs)}" for m, k in own.items())
                  + ".", ""]
    return "\n".join(lines)


def compare_folders(content_dir: str | os.PathLike, style_dir: str | os.PathLike, out_dir: str | os.PathLike,
                    config: CompareConfig, *, weights=DEFAULT_ENCODER, pooling: str | None = None, decoder=None,
                    device: str | torch.device = "auto", overwrite: bool = False, progress: bool = False,
                    command: str | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> dict:
    """Compare every (content, style) pair of two folders; write each pair's results and the summary."""
    from ..devices import resolve_device
    from ..weights import load_encoder
    from .run import compare_files

    contents, styles = list_images(content_dir), list_images(style_dir)
    for flag, folder, found in (("--content-dir", content_dir, contents), ("--style-dir", style_dir, styles)):
        if not found:
            raise UsageError(f"{flag} {str(folder)!r} holds no images")
    check_pair_names(contents, styles)
    if len(contents) * len(styles) > MAX_PAIRS:
        raise UsageError(f"{len(contents)} contents × {len(styles)} styles = {len(contents) * len(styles)} "
                         f"comparisons, more than {MAX_PAIRS}: use smaller folders")
    out_dir = Path(out_dir)
    summary_files = [out_dir / SUMMARY_JSON, out_dir / SUMMARY_MD]
    existing = [p.name for p in summary_files if p.exists()]
    if existing and not overwrite:
        raise UsageError(f"{str(out_dir)!r} already holds {', '.join(existing)}: choose another -o folder or pass "
                         "--overwrite")
    torch_device = resolve_device(device)
    encoder = weights if isinstance(weights, torch.nn.Module) else load_encoder(weights, pooling=pooling)
    reports = {}
    for content in contents:
        for style in styles:
            reports[pair_name(content, style)] = compare_files(
                content, style, out_dir / pair_name(content, style), config, weights=encoder, decoder=decoder,
                device=torch_device, overwrite=overwrite, progress=progress, command=command, max_pixels=max_pixels)
    summary = aggregate(reports)
    summary["command"] = command
    atomic_write_json(out_dir / SUMMARY_JSON, summary)
    atomic_write_text(out_dir / SUMMARY_MD, render_summary(summary, command or ""))
    return summary


def check_pair_names(contents: Sequence[Path], styles: Sequence[Path]) -> None:
    """Two contents (or styles) with one stem would share a folder: refuse before any work."""
    for flag, paths in (("--content-dir", contents), ("--style-dir", styles)):
        stems = [p.stem for p in paths]
        twice = sorted({s for s in stems if stems.count(s) > 1})
        if twice:
            raise UsageError(f"{flag}: several images named {', '.join(twice)} (other extensions or folders); "
                             "rename them so each pair gets its own folder")
