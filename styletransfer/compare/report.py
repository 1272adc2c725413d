"""The comparison's report: ``report.json`` (``build_report``) and ``report.md``
(``render_markdown``), pure functions of measured pieces."""

from __future__ import annotations

from typing import Mapping, Sequence

from ..markdown import markdown_table
from ..memory import MEASURES
from .judge import DESCRIPTION as JUDGE_DESCRIPTION
from .judge import NAME as JUDGE
from .matrix import diagonal
from .selection import CompareConfig

GRID_NAME, REPORT_JSON, REPORT_MD = "grid.png", "report.json", "report.md"
RANDOM_WEIGHTS_NOTE = ("the encoder has random weights: the images and numbers are not representative of "
                       "real style transfer (leave --weights out for the original VGG19, or pass a weights file)")
CALIBRATED_NOTE = ("calibrated strength: each optimisation method's style weight was chosen (at most {runs} "
                   "runs each) so that its content loss matches {first}'s at the shared weight ({target:.3g}); "
                   "the rows differ by formulation, not by strength. Feed-forward methods are not calibrated")
UNCALIBRATED_NOTE = ("one shared style weight: the rows may differ in strength as well as in formulation "
                     "(compare their content losses); --calibrate N equalises the content loss")
SAME_OBJECTIVE_NOTE = ("{twin} is {kept}'s objective up to a constant factor (mmd-poly with d = 2, c = 0 equals "
                       "4C²·gram, the Gram ≡ poly-MMD identity checked below), which the normalisation removes: "
                       "it is run and shown once, as {kept}")
NORMALIZATION_NOTE = ("normalized = Σ_l λ_l · L(output_l, style_l) / L(content_l, style_l), the stylizer's "
                      "own normalisation: 1 for the content image, < 1 = closer to the style than the "
                      "content was; raw = Σ_l λ_l · L(output_l, style_l)")


def build_report(*, command: str, content: str, style: str, size: Sequence[int], config: CompareConfig,
                 encoder: Mapping, decoder: Mapping | None, environment: Mapping, matrix: Mapping,
                 runs: Mapping[str, Mapping], identity: Mapping, notes: Sequence[str] = (),
                 merged: Mapping[str, str] | None = None, judge: Mapping[str, float] | None = None) -> dict:
    """Assemble the report (what ``report.json`` holds) from measured pieces. ``merged``: methods
    left out because their objective is another's (``selection.same_objectives``)."""
    random_weights = str(encoder.get("source", "")).startswith("random")
    merged = dict(merged or {})
    calibrated = {m: r["calibration"] for m, r in runs.items() if r.get("calibration")}
    strength = (CALIBRATED_NOTE.format(runs=config.calibrate, first=next(iter(calibrated)),
                                       target=next(iter(calibrated.values()))["target"])
                if calibrated else UNCALIBRATED_NOTE)
    all_notes = [*([RANDOM_WEIGHTS_NOTE] if random_weights else []), strength, *notes,
                 *(SAME_OBJECTIVE_NOTE.format(twin=twin, kept=kept) for twin, kept in merged.items())]
    own = diagonal(matrix)
    return {
        "command": command,
        "content": content,
        "style": style,
        "size": list(size),
        "methods": list(config.methods),
        "merged": merged,
        "encoder": {**encoder, "random": random_weights},
        "decoder": dict(decoder) if decoder is not None else None,
        "notes": all_notes,
        "config": config.to_dict(),
        "environment": dict(environment),
        "matrix": {**matrix, "note": NORMALIZATION_NOTE},
        "diagonal": own,
        "diagonal_below_one": all(v < 1 for v in own.values()) if own else None,
        "runs": {m: dict(r) for m, r in runs.items()},
        "memory_measures": {k: MEASURES[k] for k in dict.fromkeys(r["memory"]["measure"] for r in runs.values())},
        "identity": dict(identity),
        "judge": dict(judge or {}),  # method → Magenta style-embedding distance over the content's (compare.judge)
        "grid": GRID_NAME,
    }


def method_label(method: str, merged: Mapping[str, str]) -> str:
    """``gram ≡ mmd-poly`` for a method that stands for others with the same objective."""
    return " ≡ ".join([method, *(twin for twin, kept in merged.items() if kept == method)])


def _number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _ratio(value: float | None) -> str:
    """A ratio near 1 as '1 + 2.6e-14', so the deviation stays readable."""
    if value is None:
        return "—"
    deviation = value - 1
    return "1" if deviation == 0 else f"1 {'+' if deviation > 0 else '−'} {abs(deviation):.1e}"


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / 2**20:.1f} MiB"


def render_markdown(report: Mapping) -> str:
    """The human-readable report: header, grid, matrices, runs, identity check."""
    matrix, losses = report["matrix"], report["matrix"]["losses"]
    encoder = report["encoder"]
    width, height = report["size"]
    lines = ["# Style-loss comparison", "", "```", report["command"], "```", ""]
    lines += [f"- content: `{report['content']}`, style: `{report['style']}`, output {width}x{height}",
              f"- encoder: `{encoder['source']}` (sha256 {encoder.get('sha256') or '—'}, pooling "
              f"{encoder.get('pooling')}, padding {encoder.get('padding')})"]
    if report.get("decoder"):
        lines.append(f"- AdaIN decoder: `{report['decoder']['file']}` (norm {report['decoder']['norm']})")
    cfg = report["config"]["stylize"]
    lines.append(f"- every method: {cfg['optimizer']}, {cfg['steps']} steps, seed {cfg['seed']}, style weight "
                 f"{cfg['style_weight']:g}, content weight {cfg['content_weight']:g}, tv weight {cfg['tv_weight']:g}, "
                 f"style layers {', '.join(cfg['style_layers'])}, content layers {', '.join(cfg['content_layers'])}")
    env = report["environment"]
    lines.append(f"- device: {env.get('device')}, torch {env.get('torch')}, {env.get('cpu_threads', '?')} CPU threads")
    lines += [""] + [line for note in report["notes"] for line in (f"> **Note:** {note}", "")]
    lines += [f"![comparison grid]({report['grid']})", ""]

    lines += ["## Cross-loss matrix", "",
              "Rows: the method used to stylise. Columns: the loss used to measure the output's distance to "
              "the style. Each value is divided, layer by layer, by the content image's own distance under "
              "that loss (the stylizer's normalisation): below 1 means closer to the style than the content "
              "was. The diagonal (bold) is each formulation's own objective."
              + (f" `{JUDGE}`: {JUDGE_DESCRIPTION}, optimised by no method." if report.get("judge") else ""), ""]
    rows = []
    judged = report.get("judge") or {}
    for method in matrix["methods"]:
        cells = [f"**{_number(v)}**" if loss == method else _number(v)
                 for loss, v in matrix["normalized"][method].items()]
        cells += [_number(judged[method])] if judged else []
        rows.append([" ≡ ".join(f"`{m}`" for m in method_label(method, report.get("merged", {})).split(" ≡ ")), *cells])
    lines += [markdown_table(["method \\ measured by", *[f"`{l}`" for l in losses], *([f"`{JUDGE}`"] if judged else [])],
                             rows), ""]
    verdict = report.get("diagonal_below_one")
    if verdict is not None:
        lines += [f"Every formulation's own loss below its value on the content image: **{'yes' if verdict else 'no'}**.", ""]

    lines += ["### Raw values", "", "Layer-weighted sums Σ_l λ_l·L(x_l, s_l), unnormalised; row `content` is the "
              "content image itself (the denominators above, summed).", ""]
    rows = [[f"`{m}`", *[_number(v, 4) for v in matrix["raw"][m].values()]] for m in matrix["raw"]]
    lines += [markdown_table(["image \\ measured by", *[f"`{l}`" for l in losses]], rows), ""]

    lines += ["## Runs", ""]
    rows = []
    for method, run in report["runs"].items():
        weight = run.get("style_weight")
        tries = len(run["calibration"]["tried"]) if run.get("calibration") else None
        rows.append([f"`{method}`", f"{run['seconds']:.2f} s", str(run["steps"]) if run["steps"] is not None else "—",
                     "—" if weight is None else f"{weight:.3g}" + (f" ({tries} runs)" if tries and tries > 1 else ""),
                     _number(run["content_loss"]), _mib(run["memory"]["peak_bytes"]), f"[{run['image']}]({run['image']})"])
    lines += [markdown_table(["method", "wall time", "steps", "style weight", "content loss", "peak memory", "image"],
                             rows), ""]
    lines += ["Content loss: ½‖F − P‖² / ½‖P‖², averaged over the content layers (the stylizer's "
              "normalisation). Wall time: the whole method on the working images, after an untimed warm-up "
              "(one step of the first loss, one pass of each feed-forward method). Steps: objective evaluations "
              "(AdaIN, magenta: one forward pass, shown as —). "
              "Peak memory:"]
    lines += [f"- `{k}`: {v}" for k, v in report["memory_measures"].items()] + [""]

    identity = report["identity"]
    lines += ["## Gram ≡ poly-MMD identity", "",
              "Per style layer, content image vs style: Gatys' formula 1/(4C²M²)·Σ(G − A)² with unnormalised "
              "Gram matrices, divided by the quadratic-time kernel estimator of MMD² with k(x, y) = (xᵀy)² (which "
              "forms no Gram matrix) over 4C², in float64, on the same random positions of each image (at most "
              f"{identity.get('max_positions')}). Two independent computations: the ratio should be 1 to about "
              "1e-6.", ""]
    rows = [[f"`{layer}`", str(v["channels"]), str(v["positions"]), _ratio(v["ratio_kernel"])]
            for layer, v in identity["layers"].items()]
    lines += [markdown_table(["layer", "C", "positions", "ratio"], rows), ""]
    lines += [f"Spread across layers (max − min): {_number(identity['spread_kernel'], 2)}; largest |ratio − 1|: "
              f"{_number(identity['max_deviation_kernel'], 2)}.", ""]
    return "\n".join(lines)
