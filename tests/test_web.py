"""``styletransfer serve``: every route and every refusal through FastAPI's test client (no port),
then the real server under load on loopback and stopped by signals (a subprocess).

Jobs are tiny: random-weight optimisations of a few steps at 32 px, Magenta at 32 px.
"""

from __future__ import annotations

import io
import json
import re
import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from styletransfer import color
from styletransfer.cli import main
from styletransfer.errors import StyleTransferError
from styletransfer.imageio import read_metadata
from styletransfer.losses import STYLE_LOSSES
from styletransfer.methods import METHODS
from styletransfer.optimize import StylizeConfig
from styletransfer.web.settings import ServerSettings

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install -e \".[web]\"")
pytest.importorskip("httpx", reason="FastAPI's test client needs httpx: pip install -e \".[test]\"")

with warnings.catch_warnings():  # Starlette's note that its test client will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from styletransfer.web.app import INTERNAL_ERROR, create_app  # noqa: E402
from styletransfer.web.jobs import FOLDER_PREFIX  # noqa: E402
from styletransfer.web.jobs import INTERNAL_ERROR as JOB_INTERNAL_ERROR  # noqa: E402
from styletransfer.web.runner import run_job  # noqa: E402

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import web_load  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::styletransfer.weights.RandomWeightsWarning")

SETTINGS = ServerSettings(weights="random", device="cpu")
PAIR = {"content_sample": "chelsea", "style_sample": "mosaic"}
OPTIMIZE = {"method": "optimize", "size": "32", "steps": "3", "losses": "gram", **PAIR}
WAIT = 120  # seconds: a bound on waiting for a job, not a timing
ID = re.compile(r"[A-Za-z0-9_-]{22}")


@pytest.fixture(scope="module")
def module_torch_home(tmp_path_factory):
    return tmp_path_factory.mktemp("torch_home")


@pytest.fixture(autouse=True)
def _offline_torch_home(module_torch_home, monkeypatch):
    """conftest's fixture of this name, with one empty cache for the module instead of one per test:
    Magenta's networks are converted once here, not in every test that runs them."""
    monkeypatch.setenv("TORCH_HOME", str(module_torch_home))


@contextmanager
def serving(settings: ServerSettings = SETTINGS, run=run_job):
    with TestClient(create_app(settings, run=run), raise_server_exceptions=False) as client:
        yield client


def queue_of(client):
    return client.app.state.queue


def wait_for(client, job_id: str, until=lambda state: state["status"] in ("done", "failed", "cancelled")) -> dict:
    deadline = time.monotonic() + WAIT
    while not until(state := client.get(f"/api/jobs/{job_id}").json()):
        assert time.monotonic() < deadline, f"job still {state['status']}"
        time.sleep(0.05)
    return state


def png_bytes(width: int, height: int, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    stream = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(stream, format="PNG")
    return stream.getvalue()


def refusal(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


# --- the page and what it offers --------------------------------------------------------------


def test_page_and_its_files_come_from_this_server_under_a_strict_policy():
    with serving() as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"), ("index.html", "text/html")):
            answer = client.get(f"/static/{name}")
            assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
            assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", answer.text), f"{name} loads from elsewhere"
        assert client.get("/docs").status_code == 404  # FastAPI's docs page would load its scripts from a CDN


def test_options_come_from_the_registries_and_the_configs():
    with serving() as client:
        options = client.get("/api/options").json()
    offered = [name for name, method in METHODS.items() if method.style_images]  # not cin: no style image
    assert [m["name"] for m in options["methods"]] == offered and "cin" not in offered
    assert {m["name"]: m["available"] for m in options["methods"]} == {
        name: not METHODS.get(name).needs_decoder for name in offered}
    assert options["losses"] == STYLE_LOSSES.names()
    assert options["preserve_color"] == color.choices()
    assert options["defaults"]["size"] == StylizeConfig().scales[-1]
    assert options["defaults"]["steps"] == StylizeConfig().steps
    assert {"imagenet", "magenta", "random"} <= set(options["weights"])
    assert "magenta" in options["compare_methods"] and "adain" not in options["compare_methods"]


def test_samples_are_listed_by_id_and_served():
    with serving() as client:
        listing = client.get("/api/samples").json()
        assert "chelsea" in [s["id"] for s in listing["content"]] and listing["style"]
        image = client.get(listing["content"][0]["url"])
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"


# --- jobs ---------------------------------------------------------------------------------------


def test_optimisation_streams_its_loss_curve_and_its_png_carries_the_cli_metadata(tmp_path):
    with serving() as client:
        answer = client.post("/api/jobs", data=OPTIMIZE)
        assert answer.status_code == 202, answer.text
        job = answer.json()
        assert ID.fullmatch(job["id"]) and job["status"] == "queued" and job["steps"] == 3
        assert "styletransfer_session" in answer.cookies
        points, states = [], []
        with client.stream("GET", f"/api/jobs/{job['id']}/events") as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            for line in events.iter_lines():
                if line.startswith("data: "):
                    state = json.loads(line[len("data: "):])
                    assert state["since"] == len(points)
                    points += state["points"]
                    states.append(state["status"])
        assert states[-1] == "done", states
        assert len(points) == 3 and all(total > 0 for _, total in points)
        done = client.get(f"/api/jobs/{job['id']}").json()
        assert done["step"] == 3 and set(done["files"]) == {"content.png", "style.png", "result.png"}
        download = client.get(f"/api/jobs/{job['id']}/files/result.png?download=1")
        assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
        (tmp_path / "result.png").write_bytes(download.content)
        metadata = read_metadata(tmp_path / "result.png")
        assert metadata["method"] == "optimize" and metadata["config"]["steps"] == 3
        assert metadata["config"]["scales"] == [32] and metadata["weights"]["source"] == "random:0"
        assert metadata["preserve_color"] == "none"
        for preview in ("content.png", "style.png"):
            assert client.get(f"/api/jobs/{job['id']}/files/{preview}").content.startswith(b"\x89PNG")
        second = client.post("/api/jobs", data={**OPTIMIZE, "steps": "1"}).json()
        assert second["id"] != job["id"] and ID.fullmatch(second["id"])
        wait_for(client, second["id"])
        listed = client.get("/api/jobs").json()["jobs"]
        assert [s["id"] for s in listed] == [job["id"], second["id"]]
        client.cookies.clear()  # another client sees none of them
        assert client.get("/api/jobs").json()["jobs"] == []


def test_uploaded_images_are_stylised_with_magenta_under_names_the_server_chose():
    files = {"content": ("../../escape.png", png_bytes(48, 40, 1), "image/png"),
             "style": ("..%2F..%2Fstyle.png", png_bytes(40, 40, 2), "image/png")}
    with serving() as client:
        job = client.post("/api/jobs", files=files, data={"method": "magenta", "size": "32", "alpha": "0.8"}).json()
        state = wait_for(client, job["id"])
        assert state["status"] == "done", state["message"]
        assert state["names"] == {"content": "escape.png", "style": "..%2F..%2Fstyle.png"}
        folder, root = queue_of(client).get(job["id"]).folder, queue_of(client).folder
        assert sorted(p.name for p in folder.iterdir()) == [
            "content.png", "content.upload", "result.png", "style.png", "style.upload"]
        assert not list(root.parent.glob("**/escape.png")) and not list(root.parent.glob("style.png"))
        result = client.get(f"/api/jobs/{job['id']}/files/result.png")
        assert Image.open(io.BytesIO(result.content)).size == (38, 32)  # content short side 32, aspect kept


def test_compare_runs_every_chosen_formulation_and_serves_the_grid_and_the_cross_loss_table():
    with serving() as client:
        job = client.post("/api/jobs", data={"kind": "compare", "methods": "gram,magenta", "size": "32",
                                             "steps": "2", **PAIR}).json()
        state = wait_for(client, job["id"])
        assert state["status"] == "done", state["message"]
        assert {"grid.png", "report.json", "report.md", "gram.png", "magenta.png"} <= set(state["files"])
        report = client.get(f"/api/jobs/{job['id']}/files/report.json").json()
        assert report["matrix"]["methods"] == ["gram", "magenta"]
        assert set(report["matrix"]["normalized"]["magenta"]) == set(report["matrix"]["losses"])
        assert client.get(f"/api/jobs/{job['id']}/files/grid.png").content.startswith(b"\x89PNG")


def test_a_decoder_adds_adain_and_wct_and_adain_runs_through_its_file_function(tmp_path):
    from styletransfer.adain import Decoder, save_decoder

    decoder = save_decoder(Decoder(), tmp_path / "decoder.safetensors", {"encoder": {"source": "random:0"}})
    with serving(replace(SETTINGS, decoder=str(decoder))) as client:
        options = client.get("/api/options").json()
        assert all(m["available"] for m in options["methods"])
        assert {"adain", "wct"} <= set(options["compare_methods"])
        job = client.post("/api/jobs", data={"method": "adain", "size": "32", "alpha": "0.5", **PAIR}).json()
        state = wait_for(client, job["id"])
        assert state["status"] == "done", state["message"]
        assert state["config"]["alpha"] == 0.5 and state["config"]["content_size"] == 32
        (tmp_path / "adain.png").write_bytes(client.get(f"/api/jobs/{job['id']}/files/result.png").content)
        assert read_metadata(tmp_path / "adain.png")["method"] == "adain"


def test_cancel_stops_a_running_optimisation_at_its_next_step():
    settings = replace(SETTINGS, max_steps=1000)
    with serving(settings) as client:
        job = client.post("/api/jobs", data={**OPTIMIZE, "steps": "1000"}).json()
        wait_for(client, job["id"], until=lambda state: state["step"] >= 1)
        assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
        state = wait_for(client, job["id"])
        assert state["status"] == "cancelled" and state["step"] < 1000


def test_job_errors_reach_the_client_as_one_line_and_nothing_else(caplog):
    def fails(job, settings):
        raise (StyleTransferError("the decoder is damaged: retrain it") if job.request.method == "optimize"
               else RuntimeError("secret internals at /srv/private"))

    with serving(run=fails) as client:
        ours = wait_for(client, client.post("/api/jobs", data=OPTIMIZE).json()["id"])
        assert (ours["status"], ours["message"]) == ("failed", "the decoder is damaged: retrain it")
        other = wait_for(client, client.post("/api/jobs", data={"method": "magenta", **PAIR}).json()["id"])
        assert (other["status"], other["message"]) == ("failed", JOB_INTERNAL_ERROR)
        assert "secret internals" in caplog.text  # logged on the server

        @client.app.get("/boom")
        async def boom():
            raise RuntimeError("secret internals")

        assert refusal(client.get("/boom"), 500) == INTERNAL_ERROR


def test_a_full_queue_answers_busy_at_once_and_a_cancelled_waiting_job_frees_its_place():
    release = threading.Event()

    def blocks(job, settings):
        release.wait(WAIT)
        return {}

    with serving(replace(SETTINGS, queue_size=1), run=blocks) as client:
        running = client.post("/api/jobs", data=OPTIMIZE).json()
        wait_for(client, running["id"], until=lambda state: state["status"] == "running")
        waiting = client.post("/api/jobs", data=OPTIMIZE).json()
        assert "busy" in refusal(client.post("/api/jobs", data=OPTIMIZE), 429)
        assert client.post(f"/api/jobs/{waiting['id']}/cancel").json()["status"] == "cancelled"
        last = client.post("/api/jobs", data=OPTIMIZE)
        assert last.status_code == 202
        release.set()
        assert [wait_for(client, j["id"])["status"] for j in (running, waiting, last.json())] == [
            "done", "cancelled", "done"]


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fields, needle", [
    ({"method": "magneta"}, "did you mean 'magenta'"),
    ({"method": "adain"}, "--decoder"),
    ({"method": "cin"}, "takes no style image"),
    ({"size": "abc"}, "not a whole number"),
    ({"size": "8"}, "between 16 and 1024"),
    ({"size": "99999"}, "between 16 and 1024"),
    ({"steps": "0"}, "between 1 and 1000"),
    ({"steps": "1.5"}, "not a whole number"),
    ({"method": "magenta", "alpha": "2"}, "between 0 and 1"),
    ({"method": "magenta", "alpha": "nan"}, "between 0 and 1"),
    ({"losses": "gramm"}, "did you mean 'gram'"),
    ({"losses": "gram:-1"}, "gram"),
    ({"weights": "/etc/passwd"}, "unknown encoder weights"),
    ({"preserve_color": "sepia"}, "unknown colour preservation"),
    ({"kind": "everything"}, "unknown kind"),
    ({"kind": "compare", "methods": "gram,nope"}, "unknown method 'nope'"),
    ({"colour": "red"}, "unknown field 'colour'"),
    ({"content_sample": "../../pyproject"}, "unknown content sample"),
    ({"style_sample": ""}, "give a style image"),
    ({"content": "not a file"}, "send the image as a file"),
], ids=lambda value: value if isinstance(value, str) else "-".join(f"{k}={v}" for k, v in value.items()))
def test_bad_requests_are_refused_with_one_line_and_leave_nothing_behind(fields, needle):
    with serving() as client:
        message = refusal(client.post("/api/jobs", data={**OPTIMIZE, **fields}), 400)
        assert needle in message
        assert not list(queue_of(client).folder.iterdir()) and client.get("/api/jobs").json()["jobs"] == []


def test_uploads_over_the_byte_and_pixel_limits_and_non_images_are_refused():
    image = png_bytes(96, 64)
    with serving(replace(SETTINGS, max_upload_bytes=4096, max_pixels=5000)) as client:
        big = {"content": ("big.png", image, "image/png")}
        assert "limit" in refusal(client.post("/api/jobs", files=big, data={"style_sample": "mosaic"}), 413)
    with serving(replace(SETTINGS, max_pixels=5000)) as client:
        root = str(queue_of(client).folder)
        message = refusal(client.post("/api/jobs", files={"content": ("wide.png", image, "image/png")},
                                      data={"style_sample": "mosaic"}), 400)
        assert message.startswith("'wide.png' is 96x64 = 6144 pixels, above the limit of 5000")
        message = refusal(client.post("/api/jobs", files={"content": ("notes.txt", b"hello", "text/plain")},
                                      data={"style_sample": "mosaic"}), 400)
        assert message == "'notes.txt' is not an image Pillow can read (corrupt or unsupported format)"
        both = client.post("/api/jobs", files={"content": ("a.png", image, "image/png")}, data=PAIR)
        assert "not both" in refusal(both, 400) and root not in refusal(both, 400)
        assert "form" in refusal(client.post("/api/jobs", json=OPTIMIZE), 400)
        for body, kind in ((b"abc", "multipart/form-data"), (b"garbage", "multipart/form-data; boundary=x")):
            assert "well-formed" in refusal(client.post("/api/jobs", content=body, headers={"content-type": kind}), 400)
        assert "download" in refusal(client.get("/api/jobs/nope/files/x?download=maybe"), 400)
        assert not list(queue_of(client).folder.iterdir())


def test_unknown_ids_and_traversal_attempts_find_nothing():
    with serving() as client:
        job = client.post("/api/jobs", data=OPTIMIZE).json()["id"]
        for path in ("/api/jobs/nope", "/api/jobs/nope/events", "/api/jobs/nope/files/result.png",
                     f"/api/jobs/{job}/files/content.upload", f"/api/jobs/{job}/files/..%2F..%2F..%2Fetc%2Fpasswd",
                     f"/api/jobs/{job}/files/%2e%2e%2f{job}%2fcontent.upload", f"/api/jobs/..%2F{job}",
                     "/static/..%2F__init__.py", "/static/%2e%2e%2fapp.py", "/static/../app.py",
                     "/api/samples/content/..%2F..%2Fpyproject", "/api/samples/..%2Fcontent/chelsea",
                     "/api/samples/content/%2e%2e%2fstyle%2fmosaic"):
            assert client.get(path).status_code == 404, path
        assert refusal(client.post("/api/jobs/nope/cancel"), 404).startswith("unknown job")
        wait_for(client, job)


def test_the_temporary_folder_is_deleted_when_the_server_stops():
    with serving() as client:
        folder = queue_of(client).folder
        assert folder.name.startswith(FOLDER_PREFIX)
        wait_for(client, client.post("/api/jobs", data={**OPTIMIZE, "steps": "1"}).json()["id"])
        assert any(folder.iterdir())
    assert not folder.exists()


# --- the command --------------------------------------------------------------------------------


def test_serve_without_the_web_extra_is_one_line_naming_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and 'pip install -e ".[web]"' in result.output


def test_serve_refuses_more_workers_than_one_on_the_cpu():
    result = CliRunner().invoke(main, ["serve", "--workers", "2", "--device", "cpu"])
    assert result.exit_code == 2 and "GPU" in result.output


# --- the real server: load on loopback, signals --------------------------------------------------


@pytest.mark.slow
def test_twenty_clients_at_once_each_get_a_result_or_busy_and_sigterm_cancels_the_running_job(tmp_path):
    server = web_load.start_server(tmp_path, queue=4)
    try:
        load = web_load.fire(server, clients=20, size=64)
        stop = web_load.stop_during_a_job(server, sig=signal.SIGTERM)
    finally:
        if server.process.poll() is None:
            server.process.kill()
    print("\nweb load:", json.dumps({"load": load, "stop": stop}))
    assert load["results"] + load["busy"] == 20 and load["other"] == [], load  # every request answered, none lost
    assert load["results"] >= 1 and "busy" in load["busy_message"]
    assert load["rss_peak_mib"] - load["rss_before_mib"] < 1024, load  # memory bounded under load
    assert stop["exit_code"] == 0 and stop["job_cancelled"] and not stop["traceback"], server.output()
    assert not [name for name in stop["tmp_left"] if name.startswith(FOLDER_PREFIX)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda sig: signal.Signals(sig).name)
@pytest.mark.slow
def test_a_signal_cancels_the_running_job_and_stops_uvicorn_and_the_handlers_are_restored(sig):
    """The subprocess test above sends SIGTERM to a real server; this one delivers each signal to
    the server's own handler here (SIGINT included, which would otherwise stop pytest)."""
    import uvicorn

    from styletransfer.web.server import Server

    started, release = threading.Event(), threading.Event()

    def runs(job, settings):
        started.set()
        release.wait(WAIT)
        job.check_cancelled()
        return {}

    before = signal.getsignal(sig)
    server = Server(uvicorn.Config(create_app(SETTINGS, run=runs), port=0))
    with TestClient(server.config.app, raise_server_exceptions=False) as client:  # the lifespan makes the queue
        job = client.post("/api/jobs", data=OPTIMIZE).json()
        assert started.wait(WAIT)
        with server.capture_signals():
            signal.raise_signal(sig)
            assert server.should_exit and queue_of(client).closing.is_set()
            assert "stopping" in refusal(client.post("/api/jobs", data=OPTIMIZE), 503)
        release.set()
        assert wait_for(client, job["id"])["status"] == "cancelled"
    assert signal.getsignal(sig) == before
