"""``stylize-dataset``: stylise every image below a folder, resumably, over one or many processes.

The run, in order (every process of a torchrun job does the same on its own chunks):

1. the plan (:mod:`.plan`): contents, each (content, k)'s style, the outputs, the chunks;
2. the output folder's settings checked against a previous run's (``SETTINGS_FILE``), and what
   that run left: complete outputs (atomic writes: a file there is whole), inputs it could not
   read (skipped again while unchanged), temporary files of a killed run (removed by rank 0);
3. the styles that the missing outputs need, decoded in loader workers and represented once
   (:mod:`.styles`; with a disk cache each process computes its share of them first);
4. the chunks with a missing output: contents decoded and resized in loader workers, each
   shape's contents stylised as one batch with their K styles, missing outputs written. A chunk
   is always recomputed whole, so a resumed run writes the same bytes as an uninterrupted one;
5. each process's manifest and errors shards, merged by rank 0 once all are done.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path

import torch
from PIL import Image

from ..adain.decoder import resolve_decoder
from ..data import running_loader
from ..devices import resolve_device
from ..distributed import Distributed
from ..errors import ImageError, UsageError
from ..files import atomic_write_json, sha256_file
from ..imageio import DEFAULT_MAX_PIXELS, save_image
from ..methods import METHODS, Method
from ..realtime import Networks, Stylizer
from ..weights import DEFAULT_ENCODER
from . import records
from .loader import ChunkDataset, make_loader, prepare_file
from .plan import DatasetConfig, Output, Plan, make_plan, rank_chunks
from .styles import NO_CACHE, StyleBank, default_cache_dir

SETTINGS_FILE = "stylize-dataset.json"
BARRIER_TIMEOUT = timedelta(days=7)  # processes wait for the slowest at the end
CONTENT, STYLE = "content", "style"
WRITER_THREADS = 2  # PNG/JPEG encoding releases the GIL


@dataclass
class DatasetRun:
    """What a run did, summed over its processes."""

    written: int = 0  # outputs made by this run
    existing: int = 0  # outputs a previous run had made
    failed: int = 0  # outputs not made: their content or style could not be read
    bad_inputs: int = 0  # rows of the errors file
    styles_computed: int = 0
    seconds: float = 0.0
    seconds_models: float = 0.0  # of ``seconds``, loading the networks (this process)
    world_size: int = 1
    manifest: Path | None = None
    errors: Path | None = None

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0


def stylize_dataset(content_root: str | os.PathLike, style_root: str | os.PathLike, out_root: str | os.PathLike,
                    config: DatasetConfig | None = None, *, decoder=None, weights=DEFAULT_ENCODER,
                    pooling: str | None = None, device: str = "auto", style_cache: str | os.PathLike | None = None,
                    max_pixels: int | None = DEFAULT_MAX_PIXELS, progress: bool = False) -> DatasetRun:
    """Stylise every image below ``content_root`` with styles from ``style_root`` into
    ``out_root``, keeping relative paths (see the module docstring and docs/DATASETS.md).

    ``decoder``/``weights``/``pooling``: the networks of the methods that need an encoder and a
    decoder (``adain``, ``wct``; decoder None: the one shipped for the default encoder).
    ``style_cache``: folder of the style representations (default ``styles.default_cache_dir()``;
    ``"none"``: in memory only). Under torchrun (WORLD_SIZE > 1) each process takes its share of
    the chunks and rank 0 merges the manifests; the returned counts are the whole run's.
    """
    start = time.perf_counter()
    config = (config or DatasetConfig()).validate()
    plan = make_plan(content_root, style_root, out_root, config)
    method = METHODS.get(config.method)
    networks = Networks(weights=weights, pooling=pooling,
                        decoder=resolve_decoder(decoder, weights, method.name) if method.needs_decoder else decoder)
    dist, torch_device = Distributed.from_env(resolve_device(device), timeout=BARRIER_TIMEOUT)
    try:
        return _Run(plan, dist, torch_device, networks, style_cache=style_cache, max_pixels=max_pixels,
                    progress=progress).go(start)
    finally:
        dist.close()


def _stylizer(config: DatasetConfig, networks: Networks, device: torch.device) -> Stylizer:
    """The method's stylizer, built by its entry."""
    return METHODS.get(config.method).stylizer(config.method_config(), networks, device)


def networks_identity(method: Method, networks: Networks) -> dict:
    """What the outputs' networks are, without loading them: the pinned files a method brings, or
    the decoder's and encoder's files by hash (a network passed as an object: its weights' hash)."""
    if method.shipped is not None:
        return method.shipped()

    def identity(network) -> str:
        if isinstance(network, (str, os.PathLike)):
            return sha256_file(network) if Path(network).is_file() else str(network)  # a source name: random:0
        digest = hashlib.sha256()
        for name, tensor in network.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    used = {"decoder": (method.needs_decoder, networks.decoder), "encoder": (method.needs_encoder, networks.weights)}
    return {**{role: identity(network) for role, (needed, network) in used.items() if needed},
            **({"pooling": networks.pooling} if method.needs_encoder else {})}


class _Run:
    def __init__(self, plan: Plan, dist: Distributed, device: torch.device, networks: Networks, *,
                 style_cache, max_pixels, progress) -> None:
        self.plan, self.config, self.dist, self.device = plan, plan.config, dist, device
        self.model_networks = networks
        self.networks = networks_identity(METHODS.get(plan.config.method), networks)
        self.cache_dir = (default_cache_dir() if style_cache is None
                          else None if str(style_cache) == NO_CACHE else Path(style_cache))
        self.max_pixels, self.progress = max_pixels, progress and dist.is_main
        self.out = plan.out_root
        self.bad: dict[tuple[str, str], str] = {}  # (role, relative path) of an unreadable input → why
        self.counts = {"written": 0, "existing": 0, "failed": 0}
        self.states: dict[str, str] = {}  # output path → its state at the start (_output_state)
        self.stylizer = None
        self.seconds_models = 0.0

    # -- before any work ---------------------------------------------------------------------------

    def go(self, start: float) -> DatasetRun:
        plan, dist = self.plan, self.dist
        self.out.mkdir(parents=True, exist_ok=True)
        record = self._settings_record()
        _check_settings(self.out / SETTINGS_FILE, record)
        previous = {row["output"]: row for row in records.previous_rows(self.out, records.MANIFEST)}
        self.known_bad = {(row["role"], row["input"]): row for row in records.previous_rows(self.out, records.ERRORS)}
        if dist.is_main:
            _remove_temporary_files(self.out, {Path(o.path).parent for o in plan.outputs})
        self._barrier()
        chunks = rank_chunks(plan.chunks(), dist.rank, dist.world_size)
        pending = [chunk for chunk in chunks if not self._accounted(chunk)]
        shared_cache = self.cache_dir is not None and dist.enabled
        if shared_cache:  # each process computes its share of the styles that any process needs
            needed = self._needed_styles([c for c in plan.chunks() if not self._accounted(c)])
            styles = [s for s in needed if s % dist.world_size == dist.rank]
        else:
            styles = self._needed_styles(pending)
        shards = records.ShardWriter(self.out, self.config.manifest_format, dist.rank)
        try:
            for chunk in chunks:
                if chunk not in pending:
                    self._record_chunk(shards, chunk, previous)
            if pending or styles:
                mark = time.perf_counter()
                self._load_models()
                self.seconds_models = time.perf_counter() - mark
                self._compute_styles([s for s in styles if not self.bank.cached(plan.style_path(s))])
            if dist.is_main and not (self.out / SETTINGS_FILE).exists():  # once the networks have loaded
                atomic_write_json(self.out / SETTINGS_FILE, record)
            if shared_cache:
                self._barrier()  # what another machine computed into its own cache is computed here when used
            if pending:
                self._stylize(shards, pending, previous)
        finally:
            shards.close()
        counts = torch.tensor([self.counts["written"], self.counts["existing"], self.counts["failed"],
                               self.bank.computed if self.stylizer is not None else 0], dtype=torch.float64)
        self._barrier()
        dist.sum_(counts)
        run = DatasetRun(*(int(c) for c in counts[:3]), styles_computed=int(counts[3]), world_size=dist.world_size)
        if dist.is_main:
            merged = records.merge(self.out, self.config.manifest_format, dist.world_size)
            run.bad_inputs = merged[records.ERRORS]
            run.manifest = records.final_path(self.out, records.MANIFEST, self.config.manifest_format)
            run.errors = records.final_path(self.out, records.ERRORS, self.config.manifest_format) if run.bad_inputs else None
        run.seconds, run.seconds_models = time.perf_counter() - start, self.seconds_models
        return run

    def _barrier(self) -> None:
        if self.dist.enabled:
            torch.distributed.barrier()

    def _settings_record(self) -> dict:
        styles = "\n".join(self.plan.styles).encode()
        return {"settings": self.config.output_settings(),
                "styles": {"count": len(self.plan.styles), "sha256": hashlib.sha256(styles).hexdigest()},
                "networks": self.networks}

    # -- what earlier runs did ---------------------------------------------------------------------

    def _input_bad(self, role: str, relative: str) -> bool:
        """Whether a previous run could not read this input and it has not changed since."""
        if (role, relative) in self.bad:
            return True
        row = self.known_bad.get((role, relative))
        if row is None:
            return False
        root = self.plan.content_root if role == CONTENT else self.plan.style_root
        if records.file_stamp(root / relative) != (row["bytes"], row["mtime_ns"]):
            return False  # changed (or mended) since: try again
        self.bad[role, relative] = row["error"]
        return True

    def _output_state(self, output: Output) -> str:
        """"done" (the file is there), "failed" (an input cannot be read) or "missing", as the
        run found it at its start (looked up once: the plan and the style share ask again)."""
        state = self.states.get(output.path)
        if state is None:
            if self.plan.output_path(output).exists():
                state = "done"
            elif self._input_bad(CONTENT, self.plan.contents[output.content]) or \
                    self._input_bad(STYLE, self.plan.styles[output.style]):
                state = "failed"
            else:
                state = "missing"
            self.states[output.path] = state
        return state

    def _accounted(self, chunk: range) -> bool:
        return all(self._output_state(o) != "missing" for c in chunk for o in self.plan.outputs_of(c))

    def _record_chunk(self, shards: records.ShardWriter, chunk: range, previous: dict) -> None:
        """Rows for a chunk an earlier run finished: its outputs, and its inputs that stay unreadable."""
        rows, errors = [], []
        for content in chunk:
            for output in self.plan.outputs_of(content):
                if self._output_state(output) == "done":
                    rows.append(self._row(output, records.EXISTING, previous=previous.get(output.path)))
                    self.counts["existing"] += 1
                else:
                    errors += self._error_rows(output)
                    self.counts["failed"] += 1
        shards.add(records.MANIFEST, rows)
        shards.add(records.ERRORS, errors)

    # -- the work ----------------------------------------------------------------------------------

    def _load_models(self) -> None:
        self.stylizer = _stylizer(self.config, self.model_networks, self.device)
        self.metadata = {"method": self.config.method, "settings": self.config.output_settings(),
                         "networks": self.networks}
        identity = {"method": self.config.method, "style_size": self.config.resolved_style_size,
                    "crop": self.config.crop, "precision": self.config.precision, "networks": self.networks}
        # the image is prepared again when represented, which leaves a prepared one as it is
        self.bank = StyleBank(self._read_style, self.stylizer.represent_style, self.stylizer.representation_type,
                              identity, self.cache_dir)

    def _read_style(self, path: Path) -> torch.Tensor:
        image = prepare_file(path, self.config.resolved_style_size, self.config.crop, self.max_pixels)
        if isinstance(image, str):
            raise ImageError(image)
        return image

    def _stylize(self, shards: records.ShardWriter, pending: list[range], previous: dict) -> None:
        """The pending chunks through the loader and the networks; images are encoded and written
        by writer threads while the next chunk is computed, and a chunk's rows go to the shard
        once its files are written."""
        plan, config = self.plan, self.config
        own_size = config.resolved_style_size if self.stylizer.uses_own_style and config.alpha < 1 else None
        dataset = ChunkDataset([plan.content_path(i) for i in range(len(plan.contents))], pending,
                               size=config.content_size, crop=config.crop, max_pixels=self.max_pixels,
                               own_size=own_size)
        total = sum(len(plan.outputs_of(c)) for chunk in pending for c in chunk)
        bar = _bar(total, "stylize-dataset", self.progress)
        waiting: list = []  # the previous chunk's (rows, errors, writes)

        def finish() -> None:
            for rows, errors, writes in waiting:
                rows += [future.result() for future in writes]
                shards.add(records.MANIFEST, rows)
                shards.add(records.ERRORS, errors)
                bar.update(len(rows) + len(errors))
            waiting.clear()

        with ThreadPoolExecutor(max_workers=WRITER_THREADS) as writer, \
                running_loader(make_loader(dataset, config.workers)) as items:
            for chunk_items in items:
                done = self._stylize_chunk(chunk_items, previous, writer)
                finish()
                waiting.append(done)
            finish()
        bar.close()

    def _needed_styles(self, chunks: list[range]) -> list[int]:
        return sorted({o.style for chunk in chunks for c in chunk for o in self.plan.outputs_of(c)
                       if self._output_state(o) == "missing"})

    def _compute_styles(self, styles: list[int]) -> None:
        if not styles:
            return
        plan, config = self.plan, self.config
        dataset = ChunkDataset([plan.style_path(i) for i in range(len(plan.styles))], [[s] for s in styles],
                               size=config.resolved_style_size, crop=config.crop, max_pixels=self.max_pixels)
        bar = _bar(len(styles), "styles", self.progress)
        with running_loader(make_loader(dataset, config.workers)) as items:
            for [(style, image, _)] in items:
                if isinstance(image, str):
                    self.bad[STYLE, plan.styles[style]] = image
                else:
                    self.bank.get(plan.style_path(style), image)
                bar.update(1)
        bar.close()

    def _style(self, style: int):
        """The representation of a style, or None when it cannot be read."""
        relative = self.plan.styles[style]
        if self._input_bad(STYLE, relative):
            return None
        try:
            return self.bank.get(self.plan.style_path(style))
        except ImageError as error:
            self.bad[STYLE, relative] = str(error)
            return None

    def _stylize_chunk(self, chunk_items: list, previous: dict, writer: ThreadPoolExecutor):
        """One chunk: each shape's contents in one batch with their styles. Returns its rows so far,
        its error rows, and the writes of its new files (futures of their rows)."""
        plan = self.plan
        rows, errors, writes = [], [], []
        groups: dict[tuple, list] = {}
        for content, image, own in chunk_items:
            if isinstance(image, str):
                self.bad[CONTENT, plan.contents[content]] = image
            else:
                groups.setdefault(tuple(image.shape), []).append((content, image, own))
        made: dict[str, torch.Tensor] = {}
        for members in groups.values():
            members = [(c, image, own, [self._style(o.style) for o in plan.outputs_of(c)]) for c, image, own in members]
            members = [m for m in members if any(s is not None for s in m[3])]
            if not members:
                continue
            filler = next(s for *_, styles in members for s in styles if s is not None)  # for an unreadable style
            contents = torch.stack([image for _, image, _, _ in members])
            owns = [own for _, _, own, _ in members]
            images = self.stylizer.stylize_batch(contents, [[filler if s is None else s for s in styles]
                                                            for *_, styles in members],
                                                 own_styles=None if owns[0] is None else owns)
            for (content, _, _, styles), outputs in zip(members, images):
                for output, style, image in zip(plan.outputs_of(content), styles, outputs):
                    if style is not None:  # not the filler's
                        made[output.path] = image
        for content, *_ in chunk_items:
            for output in plan.outputs_of(content):
                if plan.output_path(output).exists():
                    rows.append(self._row(output, records.EXISTING, previous=previous.get(output.path)))
                    self.counts["existing"] += 1
                elif output.path in made:
                    writes.append(writer.submit(self._write, output, made[output.path]))
                    self.counts["written"] += 1
                else:
                    errors += self._error_rows(output)
                    self.counts["failed"] += 1
        return rows, errors, writes

    def _write(self, output: Output, image: torch.Tensor) -> dict:
        plan = self.plan
        save_image(image, plan.output_path(output), metadata={
            **self.metadata, "content": plan.contents[output.content], "style": plan.styles[output.style],
            "k": output.k})
        return self._row(output, records.WRITTEN, size=(image.shape[-1], image.shape[-2]))

    # -- rows --------------------------------------------------------------------------------------

    def _row(self, output: Output, status: str, *, size: tuple[int, int] | None = None,
             previous: dict | None = None) -> dict:
        plan, config = self.plan, self.config
        if size is None and previous is not None:
            size = (previous["width"], previous["height"])
        if size is None:
            with Image.open(plan.output_path(output)) as image:
                size = image.size
        return {"output": output.path, "content": plan.contents[output.content], "style": plan.styles[output.style],
                "k": output.k, "method": config.method, "alpha": config.alpha, "seed": config.seed,
                "content_size": config.content_size, "style_size": config.resolved_style_size, "crop": config.crop,
                "width": size[0], "height": size[1], "status": status}

    def _error_rows(self, output: Output) -> list[dict]:
        """The errors-file rows of the unreadable inputs behind an output not made."""
        rows = []
        for role, relative, root in ((CONTENT, self.plan.contents[output.content], self.plan.content_root),
                                     (STYLE, self.plan.styles[output.style], self.plan.style_root)):
            reason = self.bad.get((role, relative))
            if reason is not None:
                stamp = records.file_stamp(root / relative) or (None, None)
                rows.append({"input": relative, "role": role, "error": reason,
                             "outputs": self._outputs_using(role, relative), "bytes": stamp[0],
                             "mtime_ns": stamp[1]})
        return rows

    def _outputs_using(self, role: str, relative: str) -> int:
        """How many outputs of the whole plan an input feeds."""
        return self.config.num_styles if role == CONTENT else self._style_uses[relative]

    @cached_property
    def _style_uses(self) -> Counter:
        return Counter(self.plan.styles[output.style] for output in self.plan.outputs)


def _bar(total: int, description: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="image", disable=not enabled, leave=False)


def _check_settings(path: Path, record: dict) -> None:
    """A folder made with other settings, styles or networks is refused: mixing them would give a
    dataset whose images do not all come from one recipe."""
    if not path.exists():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UsageError(f"{str(path)!r} cannot be read: remove it, or choose another -o") from None
    for section in ("settings", "styles", "networks"):
        old, new = previous.get(section), json.loads(json.dumps(record[section], default=str))
        if old != new:
            keys = sorted(k for k in {*(old or {}), *new} if (old or {}).get(k) != new.get(k))
            what = ", ".join(f"{k} {(old or {}).get(k)!r} → {new.get(k)!r}" for k in keys[:3])
            raise UsageError(f"{str(path.parent)!r} was made with other {section} ({what}): rerun with the same "
                             "flags and inputs to resume, or choose another -o")


def _remove_temporary_files(out_root: Path, folders: set[Path]) -> None:
    """Temporary files a killed run left beside its outputs (atomic writes' ``.NAME.*.tmp``)."""
    for folder in folders:
        for temporary in (out_root / folder).glob(".*.tmp"):
            temporary.unlink(missing_ok=True)
