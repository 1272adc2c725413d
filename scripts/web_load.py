"""Load on loopback: many clients at once against a real ``styletransfer serve``.

Starts the server as a subprocess on a free 127.0.0.1 port (its temporary folder under a fresh
TMPDIR), fires CLIENTS threads at once, each submitting a magenta job at a tiny size on the
shipped samples, and follows every accepted job to its PNG. Every request must be answered —
a result, or a clear "busy" (HTTP 429 with a message) — and none lost; the server's resident
memory (VmRSS from /proc) is sampled throughout. Then a long optimisation is started and the
server is sent SIGTERM: it must cancel the job, exit, and leave no temporary folder behind.
Prints the figures as JSON (``tests/test_web.py`` runs the same functions).

    python scripts/web_load.py --clients 20 --queue 4 --size 64
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 180  # seconds for the server to answer (import torch, convert Magenta's networks)
REQUEST_TIMEOUT = 300  # seconds for one client from submission to its result
POLL = 0.2
SAMPLE_EVERY = 0.05  # seconds between memory samples
PAIR = {"content_sample": "chelsea", "style_sample": "mosaic"}
FINISHED = ("done", "failed", "cancelled")


@dataclass
class ServerProcess:
    process: subprocess.Popen
    url: str
    tmpdir: Path  # the server's TMPDIR: its temporary folder lives here while it runs
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (Linux /proc), 0 when it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def request(url: str, *, data: dict | None = None, timeout: float = 60) -> tuple[int, dict | bytes]:
    """(status, JSON or bytes) for GET, or POST of an url-encoded form when ``data`` is given."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=timeout) as answer:
            status, payload, kind = answer.status, answer.read(), answer.headers.get("content-type", "")
    except urllib.error.HTTPError as error:
        status, payload, kind = error.code, error.read(), error.headers.get("content-type", "")
    return status, json.loads(payload) if kind.startswith("application/json") else payload


def start_server(workdir: Path, *, queue: int, extra: tuple[str, ...] = ()) -> ServerProcess:
    tmpdir = workdir / "server-tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), workdir / "server.log"
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "styletransfer", "serve", "--port", str(port), "--weights", "magenta",
               "--device", "cpu", "--queue", str(queue), *extra]
    with open(log, "wb") as stream:
        process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    server = ServerProcess(process, f"http://{LOOPBACK}:{port}", tmpdir, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{server.output()}")
        try:
            if request(server.url + "/api/options", timeout=5)[0] == 200:
                return server
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the server did not answer within {START_TIMEOUT} s:\n{server.output()}")


def follow(url: str, job_id: str, timeout: float = REQUEST_TIMEOUT) -> dict:
    """Poll a job until it ends (or ``timeout``); its last state."""
    deadline = time.monotonic() + timeout
    while True:
        status, state = request(f"{url}/api/jobs/{job_id}")
        if status != 200 or state["status"] in FINISHED or time.monotonic() > deadline:
            return state if status == 200 else {"status": f"http {status}"}
        time.sleep(POLL)


def client(url: str, size: int, start: threading.Barrier) -> dict:
    """One client: submit a magenta job, then follow it to its PNG. ``answer`` is ``result``,
    ``busy`` (429 with a message) or what went wrong."""
    start.wait()
    begin = time.monotonic()
    try:
        status, body = request(url + "/api/jobs", data={"method": "magenta", "size": size, **PAIR})
    except OSError as error:
        return {"answer": f"no answer ({error})", "submit_seconds": time.monotonic() - begin}
    answered = time.monotonic() - begin
    if status == 429 and isinstance(body, dict) and body.get("error"):
        return {"answer": "busy", "message": body["error"], "submit_seconds": answered}
    if status != 202:
        return {"answer": f"http {status}", "message": str(body)[:200], "submit_seconds": answered}
    state = follow(url, body["id"])
    if state["status"] != "done":
        return {"answer": state["status"], "message": state.get("message"), "submit_seconds": answered}
    status, png = request(f"{url}/api/jobs/{body['id']}/files/result.png")
    ok = status == 200 and isinstance(png, bytes) and png.startswith(b"\x89PNG")
    return {"answer": "result" if ok else f"file http {status}", "submit_seconds": answered,
            "seconds": time.monotonic() - begin}


def fire(server: ServerProcess, *, clients: int, size: int) -> dict:
    """``clients`` threads at once; the figures."""
    pid, peak, sampling = server.process.pid, [0], threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak[0] = max(peak[0], rss_bytes(pid))
            time.sleep(SAMPLE_EVERY)

    before = rss_bytes(pid)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start, outcomes = threading.Barrier(clients), [None] * clients

    def run(index: int) -> None:
        outcomes[index] = client(server.url, size, start)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    begin = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT + 60)
    wall = time.monotonic() - begin
    sampling.set()
    sampler.join()
    answers = [o["answer"] if o else "no answer (client still waiting)" for o in outcomes]
    busy = [o for o in outcomes if o and o["answer"] == "busy"]
    return {
        "clients": clients, "size": size,
        "results": answers.count("result"), "busy": len(busy),
        "other": sorted(a for a in answers if a not in ("result", "busy")),
        "busy_message": busy[0]["message"] if busy else None,
        "max_submit_seconds": round(max(o["submit_seconds"] for o in outcomes if o), 3),
        "max_busy_answer_seconds": round(max((o["submit_seconds"] for o in busy), default=0), 3),
        "max_result_seconds": round(max((o.get("seconds", 0) for o in outcomes if o), default=0), 3),
        "wall_seconds": round(wall, 3),
        "rss_before_mib": round(before / 2**20, 1), "rss_peak_mib": round(peak[0] / 2**20, 1),
        "rss_after_mib": round(rss_bytes(pid) / 2**20, 1),
    }


def stop_during_a_job(server: ServerProcess, *, sig: int = signal.SIGTERM, timeout: float = 60) -> dict:
    """Start a long optimisation, wait until it runs, send ``sig``; how the server stopped."""
    status, job = request(server.url + "/api/jobs", data={"method": "optimize", "weights": "random", "size": 64,
                                                          "steps": 1000, **PAIR})
    if status != 202:
        raise RuntimeError(f"the long job was refused ({status}): {job}")
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while (state := request(f"{server.url}/api/jobs/{job['id']}")[1])["step"] < 1:
        if state["status"] in FINISHED or time.monotonic() > deadline:
            raise RuntimeError(f"the long job did not start: {state}")
        time.sleep(POLL)
    begin = time.monotonic()
    server.process.send_signal(sig)
    try:
        code = server.process.wait(timeout)
    except subprocess.TimeoutExpired:
        server.process.kill()
        code = server.process.wait()
    output = server.output()
    return {"signal": signal.Signals(sig).name, "exit_code": code, "stop_seconds": round(time.monotonic() - begin, 3),
            "steps_done_before_signal": state["step"], "steps_asked": 1000,
            "job_cancelled": f"job {job['id']} cancelled" in output,
            "tmp_left": sorted(p.name for p in server.tmpdir.iterdir()), "traceback": "Traceback" in output}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--queue", type=int, default=4, help="the server's --queue")
    parser.add_argument("--size", type=int, default=64, help="content short side of each magenta job")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="web-load-") as workdir:
        server = start_server(Path(workdir), queue=args.queue)
        try:
            figures = {"load": fire(server, clients=args.clients, size=args.size), "queue": args.queue,
                       "stop": stop_during_a_job(server)}
        finally:
            if server.process.poll() is None:
                server.process.kill()
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
