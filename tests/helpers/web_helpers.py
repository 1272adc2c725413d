"""A real ``styletransfer serve`` on a free loopback port, for the browser test (uvicorn in a thread)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from typing import Iterator

from styletransfer.web.settings import LOOPBACK, ServerSettings

START_TIMEOUT = 60  # seconds for uvicorn to start listening


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


@contextmanager
def live_server(settings: ServerSettings) -> Iterator[str]:
    """Serve ``settings`` on a free loopback port in a thread; yields the base URL (no trailing /)."""
    from styletransfer.web.server import build_server

    settings = replace(settings, host=LOOPBACK, port=free_port()).validate()
    server = build_server(settings, log_level="warning")
    thread = threading.Thread(target=server.run, name="styletransfer-web-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield settings.url.rstrip("/")
    finally:
        server.should_exit = True
        thread.join(timeout=30)
