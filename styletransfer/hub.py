"""Known checkpoints (``manifest.json`` in this package) and hash-checked downloads.

A download streams into a temporary file beside its destination, is checked against a full
sha256 or a known prefix of one, and only then renamed into place: an interrupted, truncated or
mismatching transfer leaves nothing behind. Files go to torch's hub cache by default
(``$TORCH_HOME/hub/checkpoints``), where torchvision keeps its own downloads.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import BinaryIO

from .errors import UsageError, WeightsError
from .files import atomic_write
from .registry import Registry

MANIFEST_RESOURCE = "manifest.json"
MANIFEST_FORMAT = "styletransfer-weights-manifest"
SHA256_HEX_DIGITS = 64
MIN_PREFIX_HEX_DIGITS = 8  # torchvision's file-name prefixes are this long
CHUNK_BYTES = 1 << 20
DEFAULT_TIMEOUT_S = 30.0
KINDS = ("encoder", "decoder")
USER_AGENT = "styletransfer-weights-download"
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class WeightsEntry:
    """One checkpoint the project knows; see weights/README.md for what each field means."""

    name: str
    kind: str
    file: str
    url: str
    sha256: str | None
    sha256_prefix: str | None
    hash_note: str
    layout: str
    encoder: str
    preprocessing: str
    training: str
    source: str
    licence: str
    reported_sha256: str | None
    reported_sha256_note: str | None

    @property
    def verifiable(self) -> bool:
        return self.sha256 is not None or self.sha256_prefix is not None

    def hash_status(self) -> str:
        if self.sha256:
            return f"sha256 {self.sha256[:12]}…"
        if self.sha256_prefix:
            return f"sha256 prefix {self.sha256_prefix}"
        if self.reported_sha256:
            return f"none verified (third parties pin {self.reported_sha256[:12]}…)"
        return "none verified"


REQUIRED_FIELDS = tuple(f.name for f in fields(WeightsEntry))


def is_sha256(text: object) -> bool:
    return isinstance(text, str) and len(text) == SHA256_HEX_DIGITS and bool(_HEX.fullmatch(text))


def is_sha256_prefix(text: object) -> bool:
    return (isinstance(text, str) and MIN_PREFIX_HEX_DIGITS <= len(text) <= SHA256_HEX_DIGITS
            and bool(_HEX.fullmatch(text)))


def parse_manifest(data: object) -> Registry[WeightsEntry]:
    """Check a decoded manifest and return its entries by name; any defect is a WeightsError."""
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("entries"), list):
        raise WeightsError(f"weights manifest is not a {MANIFEST_FORMAT!r} document with an 'entries' list")
    registry: Registry[WeightsEntry] = Registry("weights name")
    for index, raw in enumerate(data["entries"]):
        label = raw.get("name", f"#{index}") if isinstance(raw, dict) else f"#{index}"
        if not isinstance(raw, dict) or set(raw) != set(REQUIRED_FIELDS):
            got = set(raw) if isinstance(raw, dict) else set()
            raise WeightsError(f"weights manifest entry {label!r}: missing {sorted(set(REQUIRED_FIELDS) - got)}, "
                               f"unexpected {sorted(got - set(REQUIRED_FIELDS))}")
        entry = WeightsEntry(**raw)
        problems = [
            *(["sha256 must be 64 lowercase hex digits or null"]
              if entry.sha256 is not None and not is_sha256(entry.sha256) else []),
            *(["reported_sha256 must be 64 lowercase hex digits or null"]
              if entry.reported_sha256 is not None and not is_sha256(entry.reported_sha256) else []),
            *(["sha256_prefix must be 8 to 64 lowercase hex digits or null"]
              if entry.sha256_prefix is not None and not is_sha256_prefix(entry.sha256_prefix) else []),
            *([f"kind must be one of {', '.join(KINDS)}"] if entry.kind not in KINDS else []),
            *(["file must be a plain file name"] if not entry.file or Path(entry.file).name != entry.file else []),
            *(["url must be http(s)"] if not entry.url.startswith(("https://", "http://")) else []),
        ]
        if problems:
            raise WeightsError(f"weights manifest entry {label!r}: {'; '.join(problems)}")
        try:
            registry.register(entry.name)(entry)
        except ValueError:
            raise WeightsError(f"weights manifest lists {entry.name!r} twice") from None
    for _, entry in registry.items():
        if entry.encoder not in registry or registry.get(entry.encoder).kind != "encoder":
            raise WeightsError(f"weights manifest entry {entry.name!r}: encoder {entry.encoder!r} is not an encoder entry")
    return registry


@functools.lru_cache(maxsize=1)
def load_manifest() -> Registry[WeightsEntry]:
    """The manifest shipped inside the package (read on first use, then cached)."""
    text = resources.files(__package__).joinpath(MANIFEST_RESOURCE).read_text(encoding="utf-8")
    return parse_manifest(json.loads(text))


def get_entry(name: str) -> WeightsEntry:
    """The manifest entry ``name``; an unknown name is a UsageError suggesting the closest."""
    return load_manifest().get(name)


def cache_dir() -> Path:
    """torch's hub checkpoint folder: ``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def check_sha256_argument(text: str, *, flag: str = "--sha256") -> str:
    value = text.strip().lower()
    if not is_sha256(value):
        raise UsageError(f"{flag} {text!r}: expected 64 hex digits (a full sha256)")
    return value


# ---------------------------------------------------------------------------------------------
# Downloads


@dataclass(frozen=True)
class Download:
    path: Path
    sha256: str
    size: int


def _short_reason(error: BaseException) -> str:
    text = str(getattr(error, "reason", "") or error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:160]


def _copy_verified(response, stream: BinaryIO, *, url: str, name: str, sha256: str | None,
                   sha256_prefix: str | None, progress: bool) -> tuple[str, int]:
    """Copy the response body into ``stream``; raise unless it is complete and hashes right."""
    import hashlib

    from tqdm import tqdm

    length_header = response.headers.get("Content-Length")
    expected_size = int(length_header) if length_header and length_header.isdigit() else None
    digest, received = hashlib.sha256(), 0
    with tqdm(total=expected_size, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
              disable=not progress, leave=False) as bar:
        while True:
            block = response.read(CHUNK_BYTES)
            if not block:
                break
            stream.write(block)
            digest.update(block)
            received += len(block)
            bar.update(len(block))
    if expected_size is not None and received != expected_size:
        raise WeightsError(f"download of {url} ended after {received} of {expected_size} bytes (connection "
                           "closed early); nothing was saved: try again")
    actual = digest.hexdigest()
    if sha256 is not None and actual != sha256:
        raise WeightsError(f"{url} has sha256 {actual}, expected {sha256}: the file changed or was corrupted; "
                           "nothing was saved")
    if sha256_prefix is not None and not actual.startswith(sha256_prefix):
        raise WeightsError(f"{url} has sha256 {actual}, which does not start with the expected {sha256_prefix}: "
                           "the file changed or was corrupted; nothing was saved")
    return actual, received


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, sha256_prefix: str | None = None,
             progress: bool = True, timeout: float = DEFAULT_TIMEOUT_S) -> Download:
    """Stream ``url`` to the file ``dest``, verified against ``sha256`` and/or ``sha256_prefix``.

    The body goes to a temporary file in ``dest``'s folder, which is renamed to ``dest`` only
    after the transfer is complete and the hash matches; on any failure it is deleted. An
    existing ``dest`` is never replaced. Every failure is a one-line WeightsError.
    """
    dest = Path(dest)
    sha256 = sha256.lower() if sha256 else None
    sha256_prefix = sha256_prefix.lower() if sha256_prefix else None
    if sha256 is not None and not is_sha256(sha256):
        raise UsageError(f"sha256 {sha256!r} is not 64 hex digits")
    if sha256_prefix is not None and not _HEX.fullmatch(sha256_prefix):
        raise UsageError(f"sha256 prefix {sha256_prefix!r} is not hex digits")
    if dest.exists():
        raise WeightsError(f"{dest} already exists: move it away first (it is never overwritten)")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    result: dict[str, object] = {}

    def write(stream: BinaryIO) -> None:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            result["sha256"], result["size"] = _copy_verified(
                response, stream, url=url, name=dest.name, sha256=sha256, sha256_prefix=sha256_prefix,
                progress=progress)

    try:
        atomic_write(dest, write)
    except urllib.error.HTTPError as error:
        raise WeightsError(f"download of {url} failed: HTTP {error.code} {error.reason}: check the URL "
                           "(or pass --url with a mirror)") from None
    except urllib.error.URLError as error:
        raise WeightsError(f"cannot reach {url} ({_short_reason(error)}): check the network connection, "
                           "or download the file by other means and pass its path") from None
    except (OSError, http.client.HTTPException) as error:
        raise WeightsError(f"download of {url} failed ({type(error).__name__}: {_short_reason(error)}); "
                           "nothing was saved: try again") from None
    except ValueError as error:  # urllib's answer to a malformed or unsupported URL
        raise UsageError(f"cannot download {url!r}: {_short_reason(error)}") from None
    return Download(dest, str(result["sha256"]), int(result["size"]))


@dataclass(frozen=True)
class Fetched:
    """The outcome of ``fetch``: where the file is and how it was checked."""

    entry: WeightsEntry
    path: Path
    sha256: str
    downloaded: bool
    check: str  # "sha256", "sha256 prefix" or "none"


def _expected_hashes(entry: WeightsEntry, sha256: str | None, verify: bool) -> tuple[str | None, str | None]:
    if not verify:
        if sha256 is not None:
            raise UsageError("--sha256 and --no-verify contradict each other: give one of them")
        return None, None
    if sha256 is not None:
        sha256 = check_sha256_argument(sha256)
        if entry.sha256_prefix and not sha256.startswith(entry.sha256_prefix):
            raise UsageError(f"--sha256 {sha256} does not start with {entry.sha256_prefix}, the prefix known for "
                             f"{entry.name!r}: check where the hash came from")
        if entry.sha256 and sha256 != entry.sha256:
            raise UsageError(f"--sha256 differs from the manifest's sha256 for {entry.name!r} ({entry.sha256})")
        return sha256, None
    if not entry.verifiable:
        raise WeightsError(
            f"no verified sha256 is known for {entry.name!r}: pass --sha256 HEX from a source you trust, or "
            "--no-verify to download it unchecked and print its sha256 (see `styletransfer weights list`)")
    return entry.sha256, None if entry.sha256 else entry.sha256_prefix


def fetch(name: str, *, dest_dir: str | os.PathLike | None = None, sha256: str | None = None, verify: bool = True,
          url: str | None = None, progress: bool = True, timeout: float = DEFAULT_TIMEOUT_S) -> Fetched:
    """Download the manifest entry ``name`` into ``dest_dir`` (default: the torch hub cache).

    A file already there is kept when it passes the same check, and refused (never replaced)
    when it does not. ``url`` replaces the manifest's URL (a mirror); the hash check still holds.
    """
    from .files import sha256_file

    entry = get_entry(name)
    full, prefix = _expected_hashes(entry, sha256, verify)
    folder = Path(dest_dir).expanduser() if dest_dir is not None else cache_dir()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--dest {str(folder)!r} is a file, not a folder")
    target = folder / entry.file
    check = "sha256" if full else "sha256 prefix" if prefix else "none"
    if target.exists():
        actual = sha256_file(target)
        if (full and actual != full) or (prefix and not actual.startswith(prefix)):
            raise WeightsError(f"{target} already exists but its sha256 is {actual}, not the expected "
                               f"{full or prefix + '…'}: move it away and run again (it is never overwritten)")
        return Fetched(entry, target, actual, downloaded=False, check=check)
    result = download(url or entry.url, target, sha256=full, sha256_prefix=prefix, progress=progress, timeout=timeout)
    return Fetched(entry, result.path, result.sha256, downloaded=True, check=check)


def cached_path(name: str, *, dest_dir: str | os.PathLike | None = None) -> Path:
    """Where ``fetch(name)`` puts the file (whether or not it is there yet)."""
    folder = Path(dest_dir).expanduser() if dest_dir is not None else cache_dir()
    return folder / get_entry(name).file


def _looks_like_name(text: str) -> bool:
    return not any(sep in text for sep in ("/", "\\", os.sep)) and not Path(text).suffix and not text.startswith("~")


def resolve_weights_path(name_or_path: str | os.PathLike, *, kind: str | None = None) -> Path:
    """A file path for ``--weights``/``--decoder``: existing paths as they are, manifest names
    as their cached file (which must have been downloaded), anything else unchanged so that the
    loader reports it missing. ``kind`` ("encoder"/"decoder") refuses an entry of the other kind.
    """
    path = Path(name_or_path).expanduser()
    text = str(name_or_path)
    if path.exists() or not _looks_like_name(text):
        return path
    try:
        entry = get_entry(text)
    except UsageError as error:
        raise UsageError(f"no file {text!r} exists, and {error}") from None
    if kind is not None and entry.kind != kind:
        raise UsageError(f"{entry.name!r} holds {entry.kind} weights, but {kind} weights are needed here")
    cached = cache_dir() / entry.file
    if not cached.exists():
        raise WeightsError(f"weights {entry.name!r} are not downloaded (expected at {cached}): run "
                           f"`styletransfer weights download {entry.name}` first")
    return cached
