"""The job queue: a bounded queue, worker threads, cancellation, and the per-server folder.

A job gets an id from ``secrets.token_urlsafe`` (which cannot be guessed: it is the job's only key)
and a folder of that name under the server's temporary folder, which the queue creates and deletes
when it closes. At most ``capacity`` jobs wait, each holding its place from the moment its upload
starts (``reserve``) until a worker takes it; with no place left ``reserve`` raises ``QueueFull``
at once. ``workers`` threads run jobs, each through the ``run`` function the queue was built with;
``Job.check_cancelled`` (called by that function between steps) turns a cancel into ``Cancelled``.
"""

from __future__ import annotations

import logging
import queue
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import StyleTransferError

log = logging.getLogger(__name__)

ID_BYTES = 16  # 128 random bits → 22 URL-safe characters
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
INTERNAL_ERROR = "the job failed on the server (the server's log has the details)"
FOLDER_PREFIX = "styletransfer-web-"


class QueueFull(StyleTransferError):
    """No room for another job: the page is told the server is busy (HTTP 429)."""


class ShuttingDown(StyleTransferError):
    """The server is stopping and takes no more jobs (HTTP 503)."""


class Cancelled(Exception):
    """Raised inside a job that was asked to stop."""


@dataclass
class Job:
    """One job's state, shared between its worker and the requests that read it (under ``lock``)."""

    id: str
    session: str  # the client that submitted it: its listing shows only its own jobs
    folder: Path
    request: Any  # what the run function needs (forms.JobRequest)
    inputs: dict[str, Path] = field(default_factory=dict)  # "content"/"style" → the files the job reads
    summary: dict = field(default_factory=dict)  # what the page shows of the request
    planned_steps: int | None = None
    status: str = QUEUED
    message: str | None = None  # the one-line error of a failed job
    points: list[tuple[int, float]] = field(default_factory=list)  # (step, total loss), one per evaluation
    files: dict[str, Path] = field(default_factory=dict)  # name the client asks for → file in ``folder``
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    version: int = 0  # bumped on every change, so that watchers know when to send
    holds_place: bool = False  # one of the queue's places, from ``reserve`` until a worker takes it
    cancel_event: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def done(self) -> bool:
        return self.status in FINISHED

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    def report(self, record: dict) -> None:
        """An optimisation step (``stylize``'s callback): one point of the loss curve; stops a
        cancelled job."""
        with self.lock:
            self.points.append((int(record.get("step", len(self.points))), float(record["total"])))
            self.version += 1
        self.check_cancelled()

    def add_files(self, files: dict[str, Path]) -> None:
        with self.lock:
            self.files.update(files)
            self.version += 1

    def mark_started(self) -> bool:
        """Mark the job running, unless it was cancelled while it waited."""
        with self.lock:
            if self.cancel_event.is_set():
                return False
            self.status, self.started = RUNNING, time.time()
            self.version += 1
            return True

    def mark_finished(self, status: str, message: str | None = None) -> None:
        with self.lock:
            self.status, self.message, self.finished = status, message, time.time()
            self.version += 1

    def mark_cancelled(self) -> None:
        """Ask the job to stop: a waiting job is cancelled now, a running one at its next check."""
        with self.lock:
            self.cancel_event.set()
            if self.status == QUEUED:
                self.status, self.finished = CANCELLED, time.time()
            self.version += 1

    def state(self, since: int = 0) -> dict:
        """What the page needs to know, with the loss points from index ``since`` on."""
        with self.lock:
            end = self.finished or time.time()
            return {"id": self.id, "status": self.status, "message": self.message, **self.summary,
                    "step": len(self.points), "steps": self.planned_steps, "points": self.points[since:],
                    "since": since, "files": sorted(self.files), "created": self.created,
                    "seconds": None if self.started is None else round(end - self.started, 3)}


class JobQueue:
    """A bounded queue of jobs run by ``workers`` threads, in a temporary folder of its own."""

    def __init__(self, run: Callable[[Job], dict[str, Path]], *, workers: int = 1, capacity: int = 4,
                 keep: int = 200, root: str | Path | None = None) -> None:
        self._run, self.capacity, self.keep = run, capacity, keep
        self.folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=root))
        self._places = threading.Semaphore(capacity)  # one per job between ``reserve`` and its start
        self._waiting: queue.Queue[Job | None] = queue.Queue()
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()  # re-entrant: begin_close may run in a signal handler
        self.closing = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"styletransfer-web-worker-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    # --- submitting and reading ----------------------------------------------------------------

    def reserve(self, session: str) -> Job:
        """A place in the queue for a new job, with a fresh id and an empty folder; ``QueueFull`` or
        ``ShuttingDown`` at once when there is none (before the client's upload is read). The job
        holds its place until a worker takes it; ``submit`` or ``discard`` it."""
        if self.closing.is_set():
            raise ShuttingDown("the server is stopping: it takes no more jobs")
        if not self._places.acquire(blocking=False):
            raise QueueFull(f"the server is busy: {self.capacity} jobs are already waiting; try again when one "
                            "has finished")
        job_id = secrets.token_urlsafe(ID_BYTES)
        job = Job(id=job_id, session=session, folder=self.folder / job_id, request=None, holds_place=True)
        job.folder.mkdir()
        return job

    def submit(self, job: Job) -> Job:
        """Queue a reserved ``job`` (``ShuttingDown`` when the server began to stop meanwhile)."""
        if self.closing.is_set():
            self.discard(job)
            raise ShuttingDown("the server is stopping: it takes no more jobs")
        with self._lock:
            self._jobs[job.id] = job
        self._waiting.put(job)
        return job

    def discard(self, job: Job) -> None:
        """Give up ``job``'s place and delete its folder."""
        self._free_place(job)
        shutil.rmtree(job.folder, ignore_errors=True)

    def _free_place(self, job: Job) -> None:
        with self._lock:
            if job.holds_place:
                job.holds_place = False
                self._places.release()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs_of(self, session: str) -> list[Job]:
        with self._lock:
            return [job for job in self._jobs.values() if job.session == session]

    def counts(self) -> dict[str, int]:
        with self._lock:
            jobs = list(self._jobs.values())
        return {status: sum(job.status == status for job in jobs) for status in (QUEUED, RUNNING, *FINISHED)}

    def cancel(self, job: Job) -> None:
        """Ask ``job`` to stop: a waiting job never starts (its place is free at once), a running one
        stops at its next check."""
        job.mark_cancelled()
        if job.status == CANCELLED:
            self._free_place(job)

    # --- working --------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._waiting.get()
            if job is None:
                return
            self._free_place(job)
            if not job.mark_started():
                job.mark_finished(CANCELLED)
                log.info("job %s cancelled before it started", job.id)
                continue
            try:
                files = self._run(job)
                job.check_cancelled()  # a job that could not stop early still ends as cancelled
            except Cancelled:
                job.mark_finished(CANCELLED)
                log.info("job %s cancelled", job.id)
            except StyleTransferError as error:
                job.mark_finished(FAILED, str(error))
            except Exception:  # noqa: BLE001 — logged here; the client gets one generic line
                log.exception("job %s failed", job.id)
                job.mark_finished(FAILED, INTERNAL_ERROR)
            else:
                job.add_files(files)
                job.mark_finished(DONE)
            finally:
                self._forget_old()

    def _forget_old(self) -> None:
        """Drop the oldest finished jobs (and their files) beyond ``keep``."""
        with self._lock:
            finished = [job for job in self._jobs.values() if job.done]
            old = finished[:max(0, len(finished) - self.keep)]
            for job in old:
                del self._jobs[job.id]
        for job in old:
            self.discard(job)

    # --- stopping -------------------------------------------------------------------------------

    def begin_close(self) -> None:
        """Take no more jobs and cancel every job, waiting or running (signal-safe: sets flags only)."""
        self.closing.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel_event.set()  # no job lock here: a signal handler must not wait on one

    def close(self, timeout: float = 10.0) -> None:
        """``begin_close``, wait up to ``timeout`` seconds for the workers, then delete the folder."""
        self.begin_close()
        while True:  # the waiting jobs end as cancelled without running
            try:
                job = self._waiting.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.mark_cancelled()
        for _ in self._threads:
            self._waiting.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        if alive:
            log.warning("%s still running after %.0f s; deleting the folder anyway", ", ".join(alive), timeout)
        shutil.rmtree(self.folder, ignore_errors=True)
