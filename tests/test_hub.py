"""Manifest and hash-checked downloads, against an HTTP server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from styletransfer import hub
from styletransfer.cli import main
from styletransfer.errors import UsageError, WeightsError
from styletransfer.weights import load_encoder
from tests.helpers.reference_nets import pytorch_adain_decoder, pytorch_adain_vgg, randomize_

ROOT = Path(__file__).resolve().parents[1]
BODY = bytes(range(256)) * 1200  # 300 KiB: several read chunks' worth of progress updates
BODY_SHA = hashlib.sha256(BODY).hexdigest()
MISSING_BYTES = 1000
SERVER_TIMEOUT_S = 5


class _Handler(BaseHTTPRequestHandler):
    timeout = SERVER_TIMEOUT_S

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/file.bin":
            self._send(BODY, len(BODY))
        elif self.path == "/truncated.bin":  # promises more than it sends, then hangs up
            self._send(BODY[: len(BODY) // 2], len(BODY) + MISSING_BYTES)
        else:
            self.send_error(404, "Not Found")

    def _send(self, payload: bytes, length: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(SERVER_TIMEOUT_S)


def torch_home_cache() -> Path:
    return Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


# --- manifest -------------------------------------------------------------------------------


def test_manifest_entries_are_well_formed():
    manifest = hub.load_manifest()
    assert {"torchvision-vgg19", "adain-vgg", "adain-decoder"} <= set(manifest.names())
    for name, entry in manifest.items():
        for field in hub.REQUIRED_FIELDS:
            assert hasattr(entry, field)
        for value in (entry.sha256, entry.reported_sha256):
            assert value is None or (len(value) == 64 and all(c in "0123456789abcdef" for c in value))
        assert entry.sha256_prefix is None or hub.is_sha256_prefix(entry.sha256_prefix)
        assert entry.url.startswith("https://") and entry.url.rsplit("/", 1)[1] == entry.file
        assert manifest.get(entry.encoder).kind == "encoder"
    vgg = manifest.get("torchvision-vgg19")
    assert (vgg.sha256, vgg.sha256_prefix) == (None, "dcbb9e9d") and vgg.file == "vgg19-dcbb9e9d.pth"
    # the manifest claims no hash it could not verify: pytorch-AdaIN publishes none
    assert manifest.get("adain-vgg").sha256 is None and manifest.get("adain-decoder").sha256 is None
    assert manifest.get("adain-decoder").encoder == "adain-vgg"


def test_weights_readme_describes_every_manifest_entry():
    readme = (ROOT / "weights" / "README.md").read_text(encoding="utf-8")
    assert "styletransfer/manifest.json" in readme
    for name, entry in hub.load_manifest().items():
        assert f"`{name}`" in readme and entry.url in readme and f"`{entry.file}`" in readme


def test_malformed_manifest_is_refused():
    good = {k: getattr(hub.load_manifest().get("adain-vgg"), k) for k in hub.REQUIRED_FIELDS}
    data = {"format": hub.MANIFEST_FORMAT, "entries": [good]}
    assert hub.parse_manifest(data).names() == ["adain-vgg"]
    for broken, needle in [
        ({**good, "sha256": "abc"}, "64 lowercase hex"),
        ({**good, "sha256": "A" * 64}, "64 lowercase hex"),
        ({k: v for k, v in good.items() if k != "url"}, "missing ['url']"),
        ({**good, "kind": "loss"}, "kind"),
    ]:
        with pytest.raises(WeightsError, match=needle.replace("[", r"\[").replace("]", r"\]")):
            hub.parse_manifest({**data, "entries": [broken]})
    with pytest.raises(WeightsError, match="twice"):
        hub.parse_manifest({**data, "entries": [good, good]})


def test_unknown_name_suggests_the_closest():
    with pytest.raises(UsageError) as info:
        hub.get_entry("adain-decodr")
    assert "did you mean 'adain-decoder'?" in one_line(info)


# --- download() -----------------------------------------------------------------------------


@pytest.mark.parametrize("progress", [True, False])
def test_good_file_is_verified_and_lands_in_place(server, tmp_path, capsys, progress):
    dest = tmp_path / "cache" / "file.bin"
    result = hub.download(f"{server}/file.bin", dest, sha256=BODY_SHA, progress=progress)
    assert dest.read_bytes() == BODY and (result.sha256, result.size) == (BODY_SHA, len(BODY))
    assert os.listdir(dest.parent) == ["file.bin"]
    err = capsys.readouterr().err
    assert ("file.bin" in err) == progress  # the tqdm bar names the file, and only when asked


def test_prefix_hash_check(server, tmp_path):
    dest = tmp_path / "file.bin"
    hub.download(f"{server}/file.bin", dest, sha256_prefix=BODY_SHA[:8].upper(), progress=False)
    assert dest.read_bytes() == BODY
    other = tmp_path / "other.bin"
    wrong = ("0" if BODY_SHA[0] != "0" else "1") + BODY_SHA[1:8]
    with pytest.raises(WeightsError) as info:
        hub.download(f"{server}/file.bin", other, sha256_prefix=wrong, progress=False)
    assert f"does not start with the expected {wrong}" in one_line(info)
    assert sorted(os.listdir(tmp_path)) == ["file.bin"]


def test_wrong_hash_is_refused_and_nothing_is_left(server, tmp_path):
    folder = tmp_path / "cache"
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(WeightsError) as info:
        hub.download(f"{server}/file.bin", folder / "file.bin", sha256=wrong, progress=False)
    message = one_line(info)
    assert BODY_SHA in message and wrong in message and "nothing was saved" in message
    assert os.listdir(folder) == []  # neither the file nor a temporary one


def test_truncated_transfer_is_refused_and_nothing_is_left(server, tmp_path):
    folder = tmp_path / "cache"
    with pytest.raises(WeightsError) as info:
        hub.download(f"{server}/truncated.bin", folder / "t.bin", progress=False)
    assert f"ended after {len(BODY) // 2} of {len(BODY) + MISSING_BYTES} bytes" in one_line(info)
    assert os.listdir(folder) == []


def test_http_404_and_unreachable_host_are_one_line_errors(server, tmp_path):
    with pytest.raises(WeightsError) as info:
        hub.download(f"{server}/missing.bin", tmp_path / "m.bin", progress=False)
    assert "HTTP 404" in one_line(info)
    with socket.socket() as probe:  # a port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(WeightsError) as info:
        hub.download(f"http://127.0.0.1:{port}/x.bin", tmp_path / "x.bin", progress=False, timeout=SERVER_TIMEOUT_S)
    assert "cannot reach" in one_line(info)
    assert os.listdir(tmp_path) == []


def test_existing_destination_is_never_replaced(server, tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"mine")
    with pytest.raises(WeightsError, match="already exists"):
        hub.download(f"{server}/file.bin", dest, sha256=BODY_SHA, progress=False)
    assert dest.read_bytes() == b"mine"


# --- fetch(): manifest entries ----------------------------------------------------------------


def test_fetch_with_trusted_hash_lands_in_the_torch_home_cache(server):
    result = hub.fetch("adain-decoder", url=f"{server}/file.bin", sha256=BODY_SHA, progress=False)
    expected = torch_home_cache() / "decoder.pth"
    assert result.path == expected == hub.cached_path("adain-decoder")
    assert expected.read_bytes() == BODY and result.downloaded and result.check == "sha256"
    again = hub.fetch("adain-decoder", url=f"{server}/missing.bin", sha256=BODY_SHA, progress=False)
    assert not again.downloaded and again.sha256 == BODY_SHA  # verified copy reused, no request made


def test_fetch_refuses_unknown_hash_unless_told(server, tmp_path):
    with pytest.raises(WeightsError) as info:
        hub.fetch("adain-vgg", dest_dir=tmp_path, url=f"{server}/file.bin", progress=False)
    assert "--sha256 HEX" in one_line(info) and "--no-verify" in str(info.value)
    assert os.listdir(tmp_path) == []
    result = hub.fetch("adain-vgg", dest_dir=tmp_path, url=f"{server}/file.bin", verify=False, progress=False)
    assert result.check == "none" and result.sha256 == BODY_SHA and (tmp_path / "vgg_normalised.pth").exists()


def test_fetch_checks_torchvision_prefix(server, tmp_path):
    """Our test body does not start with dcbb9e9d, so it is refused like a tampered file."""
    with pytest.raises(WeightsError, match="does not start with the expected dcbb9e9d"):
        hub.fetch("torchvision-vgg19", dest_dir=tmp_path, url=f"{server}/file.bin", progress=False)
    with pytest.raises(UsageError, match="does not start with dcbb9e9d"):
        hub.fetch("torchvision-vgg19", dest_dir=tmp_path, sha256=BODY_SHA, progress=False)
    assert os.listdir(tmp_path) == []


def test_fetch_keeps_a_mismatching_existing_file(server, tmp_path):
    (tmp_path / "decoder.pth").write_bytes(b"somebody's decoder")
    with pytest.raises(WeightsError, match="already exists but its sha256"):
        hub.fetch("adain-decoder", dest_dir=tmp_path, url=f"{server}/file.bin", sha256=BODY_SHA, progress=False)
    assert (tmp_path / "decoder.pth").read_bytes() == b"somebody's decoder"


@pytest.mark.parametrize("flags, needle", [
    ({"sha256": "xyz"}, "64 hex digits"),
    ({"sha256": BODY_SHA, "verify": False}, "contradict"),
])
def test_fetch_bad_flags_are_usage_errors(flags, needle):
    with pytest.raises(UsageError, match=needle):
        hub.fetch("adain-vgg", **flags)


# --- resolving names for --weights / --decoder -----------------------------------------------


def test_resolve_weights_path():
    with pytest.raises(WeightsError) as info:
        hub.resolve_weights_path("adain-vgg")
    assert "`styletransfer weights download adain-vgg` first" in one_line(info)
    with pytest.raises(UsageError, match="did you mean 'adain-vgg'"):
        hub.resolve_weights_path("adain-vg")
    assert hub.resolve_weights_path("some/where/missing.pth") == Path("some/where/missing.pth")
    cached = torch_home_cache() / "vgg_normalised.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert hub.resolve_weights_path("adain-vgg") == cached
    with pytest.raises(UsageError, match="decoder weights, but encoder weights are needed"):
        hub.resolve_weights_path("adain-decoder", kind="encoder")


def test_load_encoder_resolves_a_downloaded_manifest_name(tmp_path, monkeypatch):
    cached = torch_home_cache() / "vgg_normalised.pth"
    cached.parent.mkdir(parents=True)
    net = randomize_(pytorch_adain_vgg(), seed=3)
    torch.save(net.state_dict(), cached)
    encoder = load_encoder("adain-vgg")
    assert encoder.spec.metadata["layout"] == "adain" and encoder.spec.source == str(cached)
    assert torch.equal(encoder.convs["conv1_1"].weight, net[2].weight)
    # a real file of the same name as an entry wins over the manifest
    monkeypatch.chdir(tmp_path)
    torch.save(randomize_(pytorch_adain_decoder(), seed=1).state_dict(), tmp_path / "adain-vgg")
    with pytest.raises(WeightsError, match="not a VGG19 encoder checkpoint"):
        load_encoder("adain-vgg")


# --- CLI ------------------------------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_weights_list_and_download(server, tmp_path):
    listed = run("weights", "list")
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line for line in listed.output.splitlines()}
    for name, entry in hub.load_manifest().items():
        assert entry.file in rows[name] and " no " in rows[name]
    assert "prefix dcbb9e9d" in rows["torchvision-vgg19"] and "adain-vgg relu4_1" in rows["adain-decoder"]

    refused = run("weights", "download", "adain-decoder", "--url", f"{server}/file.bin", "--no-progress")
    assert refused.exit_code == 1 and refused.output.count("\n") == 1 and "--no-verify" in refused.output

    done = run("weights", "download", "adain-decoder", "--url", f"{server}/file.bin", "--sha256", BODY_SHA,
               "--no-progress")
    assert done.exit_code == 0, done.output
    assert "verified" in done.output and (torch_home_cache() / "decoder.pth").read_bytes() == BODY
    rows = {line.split()[0]: line for line in run("weights", "list").output.splitlines()}
    assert " yes " in rows["adain-decoder"] and " no " in rows["adain-vgg"]

    unchecked = run("weights", "download", "adain-vgg", "--dest", tmp_path / "d", "--no-verify",
                    "--url", f"{server}/file.bin", "--no-progress")
    assert unchecked.exit_code == 0 and f"sha256 {BODY_SHA} (NOT verified" in unchecked.output
    assert (tmp_path / "d" / "vgg_normalised.pth").read_bytes() == BODY

    missing = run("weights", "download", "adain-vgg", "--dest", tmp_path / "e", "--sha256", BODY_SHA,
                  "--url", f"{server}/nothing.bin", "--no-progress")
    assert missing.exit_code == 1 and "HTTP 404" in missing.output and not (tmp_path / "e" / "vgg_normalised.pth").exists()

    unknown = run("weights", "download", "adain-vg")
    assert unknown.exit_code == 2 and "did you mean 'adain-vgg'?" in unknown.output
