"""The shipped sample images, offered by id: a request names a sample by the id listed here,
and only this table turns an id into a file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..imageio import list_images
from ..registry import did_you_mean

KINDS = ("content", "style")


@dataclass(frozen=True)
class Sample:
    id: str  # the file's stem, e.g. "chelsea"
    path: Path

    def to_dict(self, kind: str) -> dict:
        return {"id": self.id, "name": self.path.name, "url": f"/api/samples/{kind}/{self.id}"}


class Samples:
    """``{kind: {id: Sample}}`` read once from ``folder/content`` and ``folder/style``."""

    def __init__(self, folder: Path | None) -> None:
        self._table: dict[str, dict[str, Sample]] = {kind: {} for kind in KINDS}
        for kind in KINDS:
            if folder is not None and (Path(folder) / kind).is_dir():
                for path in list_images(Path(folder) / kind, recursive=False):
                    self._table[kind].setdefault(path.stem, Sample(path.stem, path))

    def listing(self) -> dict[str, list[dict]]:
        return {kind: [s.to_dict(kind) for s in samples.values()] for kind, samples in self._table.items()}

    def find(self, kind: str, sample_id: str) -> Sample | None:
        return self._table.get(kind, {}).get(sample_id)

    def get(self, kind: str, sample_id: str) -> Sample:
        """The sample, or a usage error listing the ids there are."""
        sample = self.find(kind, sample_id)
        if sample is None:
            ids = list(self._table.get(kind, {}))
            raise UsageError(f"unknown {kind} sample {sample_id[:60]!r}{did_you_mean(sample_id, ids)}: choose from "
                             f"{', '.join(ids) or 'none (this server has no samples)'}")
        return sample
