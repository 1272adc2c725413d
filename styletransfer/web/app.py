"""The page's routes: ``create_app(settings)`` builds the FastAPI application.

The application binds no port (``server.serve`` runs it on uvicorn; tests use FastAPI's test
client). Its job queue and temporary folder live from startup to shutdown (the lifespan). Every
answer that is not a file is JSON; a refusal is ``{"error": one line}`` with the status saying
which kind (400 bad request, 404 unknown, 413 too large, 429 busy, 503 stopping). Nothing from a
request is used as a file path: samples, static files and job files are looked up by name in
tables the server built.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ..errors import StyleTransferError, UsageError
from ..imageio import resize_edge, save_image
from .forms import page_options, parse_job
from .jobs import FINISHED, ID_BYTES, Job, JobQueue, QueueFull, ShuttingDown
from .runner import RESULT, run_job
from .samples import KINDS, Samples
from .settings import ServerSettings
from .uploads import FormReader, TooLarge, check_image

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
SESSION_COOKIE = "styletransfer_session"
SESSION_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
EVENT_INTERVAL = 0.2  # seconds between checks of a watched job
PREVIEW_EDGE = 512  # long edge of the input previews the page shows beside the result
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
                                 b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
STATUS = {TooLarge: 413, QueueFull: 429, ShuttingDown: 503}
INTERNAL_ERROR = "internal error (the server's log has the details)"


def static_files(folder: Path = STATIC) -> dict[str, tuple[bytes, str]]:
    """``{name: (bytes, media type)}`` of the page's files, read once."""
    return {path.name: (path.read_bytes(), MEDIA_TYPES[path.suffix]) for path in sorted(folder.iterdir())
            if path.suffix in MEDIA_TYPES}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def status_of(failure: StyleTransferError) -> int:
    return next((code for kind, code in STATUS.items() if isinstance(failure, kind)), 400)


class SecurityHeaders:
    """ASGI middleware adding a strict content security policy (everything from this server) and
    friends to every answer."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        return await self.app(scope, receive, send_with_headers)


def _session(request: Request) -> tuple[str, bool]:
    """The client's session id from its cookie, or a new one (and whether it is new)."""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if SESSION_PATTERN.fullmatch(cookie):
        return cookie, False
    return secrets.token_urlsafe(ID_BYTES), True


def _prepare_inputs(job: Job, reader: FormReader, samples: Samples, settings: ServerSettings) -> dict[str, str]:
    """Each input (an upload or a sample) read by the project's loader, with a preview for the page;
    the job's ``inputs``. Returns the inputs' names as the client knows them."""
    names = {}
    for kind in KINDS:
        upload, sample_id = reader.files.get(kind), reader.fields.get(f"{kind}_sample", "").strip()
        if upload is not None and sample_id:
            raise UsageError(f"give either a {kind} image or a {kind} sample, not both")
        if upload is not None:
            path, names[kind] = upload.path, upload.name
        elif sample_id:
            sample = samples.get(kind, sample_id)
            path, names[kind] = sample.path, sample.path.name
        else:
            raise UsageError(f"give a {kind} image: upload one or pick a sample")
        image = check_image(path, names[kind], max_pixels=settings.max_pixels)
        preview = save_image(resize_edge(image, min(PREVIEW_EDGE, max(image.shape[-2:]))), job.folder / f"{kind}.png")
        job.inputs[kind] = path
        job.add_files({preview.name: preview})
    return names


def create_app(settings: ServerSettings, *, run: Callable[[Job, ServerSettings], dict] = run_job) -> FastAPI:
    """The application for ``settings``; ``run`` does one job (tests may pass another)."""
    samples = Samples(settings.samples)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.queue = JobQueue(partial(run, settings=settings), workers=settings.workers,
                                   capacity=settings.queue_size, keep=settings.keep_results)
        app.state.checking = asyncio.Semaphore(1)  # one upload decoded at a time: memory stays bounded
        log.info("jobs and uploads live in %s until the server stops", app.state.queue.folder)
        try:
            yield
        finally:
            await run_in_threadpool(app.state.queue.close)

    app = FastAPI(title="styletransfer", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SecurityHeaders)
    _add_error_handlers(app)
    _add_page_routes(app, static_files(), page_options(settings), samples)
    _add_job_routes(app, settings, samples)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every failure answers with one JSON error line; internal errors are logged, not shown."""
    @app.exception_handler(StyleTransferError)
    async def _refused(request: Request, failure: StyleTransferError):
        return error(status_of(failure), str(failure))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, failure: HTTPException):
        return error(failure.status_code, str(failure.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, failure: RequestValidationError):
        first = next(iter(failure.errors()), {})
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error(400, f"bad request: {where}: {first.get('msg', 'invalid')}"[:200])

    @app.exception_handler(Exception)
    async def _internal(request: Request, failure: Exception):
        log.error("%s %s failed", request.method, request.url.path, exc_info=failure)
        return error(500, INTERNAL_ERROR)


def _add_page_routes(app: FastAPI, static: dict, options: dict, samples: Samples) -> None:
    """The page, its static files, the options it offers and the sample images."""
    @app.get("/")
    async def index():
        body, media_type = static["index.html"]
        return Response(body, media_type=media_type)

    @app.get("/static/{name}")
    async def static_file(name: str):
        if name not in static:
            raise HTTPException(404, "not found")
        body, media_type = static[name]
        return Response(body, media_type=media_type)

    @app.get("/api/options")
    async def get_options():
        return options

    @app.get("/api/samples")
    async def list_samples():
        return samples.listing()

    @app.get("/api/samples/{kind}/{sample_id}")
    async def sample_image(kind: str, sample_id: str):
        sample = samples.find(kind, sample_id)
        if sample is None:
            raise HTTPException(404, "unknown sample")
        return FileResponse(sample.path)


def _queue_of(request: Request) -> JobQueue:
    return request.app.state.queue


def _job_of(request: Request, job_id: str) -> Job:
    job = _queue_of(request).get(job_id)
    if job is None:
        raise HTTPException(404, "unknown job (ids are kept until the server stops or drops its oldest results)")
    return job


def _add_job_routes(app: FastAPI, settings: ServerSettings, samples: Samples) -> None:
    """Submitting, following, cancelling and downloading jobs."""
    @app.get("/api/jobs")
    async def list_jobs(request: Request):
        session, _ = _session(request)
        jobs = _queue_of(request).jobs_of(session)
        return {"jobs": [job.state(since=len(job.points)) for job in jobs], "queue": _queue_of(request).counts()}

    @app.post("/api/jobs", status_code=202)
    async def submit(request: Request):
        queue = _queue_of(request)
        session, new = _session(request)
        job = queue.reserve(session)  # a busy server answers at once, before reading the upload
        try:
            reader = FormReader(request.headers.get("content-type"), job.folder,
                                max_file_bytes=settings.max_upload_bytes)
            reader.check_declared_length(request.headers.get("content-length"))
            async for chunk in request.stream():
                reader.feed(chunk)
            reader.finish()
            job.request = parse_job(reader.fields, settings)
            async with request.app.state.checking:
                names = await run_in_threadpool(_prepare_inputs, job, reader, samples, settings)
            job.summary = {**job.request.summary(), "names": names}
            job.planned_steps = job.request.planned_steps
            queue.submit(job)
        except BaseException:
            queue.discard(job)
            raise
        response = JSONResponse(job.state(), status_code=202)
        if new:
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict")
        return response

    @app.get("/api/jobs/{job_id}")
    async def get_job(request: Request, job_id: str):
        return _job_of(request, job_id).state()

    @app.post("/api/jobs/{job_id}/cancel")
    async def cancel_job(request: Request, job_id: str):
        job = _job_of(request, job_id)
        _queue_of(request).cancel(job)
        return job.state()

    @app.get("/api/jobs/{job_id}/events")
    async def job_events(request: Request, job_id: str):
        """Server-sent events: the job's state whenever it changes (new loss points only), until it ends."""
        job, queue = _job_of(request, job_id), _queue_of(request)

        async def stream():
            sent, version = 0, -1
            while True:
                if job.version != version:
                    version = job.version
                    state = job.state(since=sent)
                    sent += len(state["points"])
                    yield f"data: {json.dumps(state)}\n\n"
                    if state["status"] in FINISHED:
                        return
                if queue.closing.is_set() or await request.is_disconnected():
                    return
                await asyncio.sleep(EVENT_INTERVAL)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    @app.get("/api/jobs/{job_id}/files/{name}")
    async def job_file(request: Request, job_id: str, name: str, download: bool = False):
        job = _job_of(request, job_id)
        path = job.files.get(name)
        if path is None:
            raise HTTPException(404, "no such file in this job")
        filename = f"styletransfer-{job.summary.get('method', 'result')}-{job.id[:8]}.png" if name == RESULT else name
        return FileResponse(path, filename=filename if download else None,
                            content_disposition_type="attachment" if download else "inline")
