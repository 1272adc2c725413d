"""Running the page on uvicorn, stopped within seconds by SIGINT or SIGTERM.

On a signal the job queue is told first (no more jobs, every job cancelled, event streams end),
then uvicorn stops accepting connections and finishes the open ones, the application's shutdown
waits for the workers and deletes the server's temporary folder. Open connections get at most
``GRACE_SECONDS``; a second Ctrl+C forces the exit.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading

import uvicorn

from .app import create_app
from .settings import ServerSettings

GRACE_SECONDS = 3
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Server(uvicorn.Server):
    """uvicorn's server, cancelling the jobs as soon as a signal arrives; once stopped it returns
    (uvicorn's own ``capture_signals`` would raise the signal again, a KeyboardInterrupt for Ctrl+C)."""

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig, frame) -> None:
        queue = getattr(self.config.app.state, "queue", None)
        if queue is not None:
            queue.begin_close()
        super().handle_exit(sig, frame)


def build_server(settings: ServerSettings, *, log_level: str = "info") -> Server:
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level, lifespan="on",
                            timeout_graceful_shutdown=GRACE_SECONDS, access_log=False)
    return Server(config)


def serve(settings: ServerSettings, *, log_level: str = "info") -> None:
    """Serve until a signal; the temporary folder is gone when this returns."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    build_server(settings, log_level=log_level).run()
