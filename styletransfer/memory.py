"""Peak memory of a block of work, measured the way the device allows.

* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` — the peak of
  tensor memory held by PyTorch's caching allocator on that device.
* CPU: the process's resident set size (RSS), sampled in a background thread from
  ``/proc/self/statm`` (Linux). Where that file does not exist, the high-water mark
  ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is used instead; it only moves when the process
  exceeds its earlier peak, so work that stays below an earlier peak reads as 0.

Both report ``peak_bytes`` = the peak minus the level at the start of the block. On the CPU,
memory that an earlier block freed but the allocator kept is reused without raising RSS, so the
CPU number is a lower bound of what the block would need on its own.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

SAMPLE_INTERVAL_S = 0.005
STATM = Path("/proc/self/statm")
MEASURES = {
    "cuda-allocated": "peak of torch.cuda.max_memory_allocated during the run minus the allocation at its start",
    "cpu-rss-sampled": f"peak resident set size sampled every {SAMPLE_INTERVAL_S * 1000:g} ms minus RSS at the "
                       "start (a lower bound: memory freed by an earlier run and kept by the allocator is reused)",
    "cpu-maxrss": "increase of the process's RSS high-water mark (getrusage ru_maxrss); 0 when the run stayed "
                  "below an earlier peak",
    "unavailable": "no memory measure on this platform",
}


@dataclass
class MemoryUsage:
    measure: str  # a key of MEASURES
    peak_bytes: int | None  # peak during the block minus the level at its start
    baseline_bytes: int | None  # the level at the start

    def to_dict(self) -> dict:
        return asdict(self)


def _current_rss() -> int | None:
    try:
        resident_pages = int(STATM.read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _max_rss() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024  # bytes on macOS, KiB elsewhere


class PeakMemory:
    """``with PeakMemory(device) as meter: ...`` then ``meter.usage``."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.usage: MemoryUsage | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak = 0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        elif (rss := _current_rss()) is not None:
            self._start = self._peak = rss
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        else:
            self._start = _max_rss()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            rss = _current_rss()
            if rss is not None and rss > self._peak:
                self._peak = rss

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            self.usage = MemoryUsage("cuda-allocated", peak - self._start, self._start)
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            rss = _current_rss()
            peak = max(self._peak, rss or 0)
            self.usage = MemoryUsage("cpu-rss-sampled", peak - self._start, self._start)
        elif self._start is not None and (end := _max_rss()) is not None:
            self.usage = MemoryUsage("cpu-maxrss", end - self._start, self._start)
        else:
            self.usage = MemoryUsage("unavailable", None, None)
