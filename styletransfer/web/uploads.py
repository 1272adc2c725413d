"""Request bodies streamed to disk under limits, and uploaded images checked by the project's loader.

A body is parsed chunk by chunk by python-multipart as it arrives; a body over the limit is
refused as soon as it is, before the rest is read. Each file part is written to
``folder/{field}.upload``: a name chosen here, never the client's file name, which serves only to
name the file in messages.
"""

from __future__ import annotations

import shutil
import unicodedata
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from torch import Tensor

from ..errors import ImageError, UsageError
from ..imageio import load_image

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
FORM_OVERHEAD_BYTES = 2**20  # room for the text fields and the multipart framing around the files
MAX_NAME_CHARS = 80


class TooLarge(UsageError):
    """A body or an uploaded file beyond this server's limit (HTTP 413)."""


@dataclass(frozen=True)
class Upload:
    field: str  # "content" or "style"
    path: Path  # folder/{field}.upload
    name: str  # the client's file name, cleaned, for messages only
    size: int  # bytes


def display_name(raw: bytes | str | None, field: str) -> str:
    """The client's file name as messages show it: its last path part, printable, shortened."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (raw or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] not in "CZ" or ch == " ").strip()
    return text[:MAX_NAME_CHARS] or f"the {field} image"


def megabytes(count: int) -> str:
    return f"{count / 2**20:.3g} MB"


class FormReader:
    """Parse one form body fed chunk by chunk: text fields into a dict, the ``file_fields`` into files."""

    def __init__(self, content_type: str | None, folder: Path, *, max_file_bytes: int,
                 file_fields: Iterable[str] = ("content", "style")) -> None:
        from python_multipart.multipart import FormParser, parse_options_header

        kind, params = parse_options_header(content_type or "")
        kind = kind.decode("latin-1").lower()
        if kind not in FORM_TYPES:
            raise UsageError(f"send the job as a form ({' or '.join(FORM_TYPES)}), not {kind or 'an untyped body'}")
        if kind == FORM_TYPES[0] and not params.get(b"boundary"):
            raise UsageError("the request is not a well-formed form (multipart/form-data without a boundary)")
        self.folder, self.max_file_bytes = Path(folder), max_file_bytes
        self.max_body_bytes = len(tuple(file_fields)) * max_file_bytes + FORM_OVERHEAD_BYTES
        self.file_fields = tuple(file_fields)
        self.urlencoded = kind == FORM_TYPES[1]  # python-multipart leaves such names and values %-encoded
        self.fields: dict[str, str] = {}
        self.files: dict[str, Upload] = {}
        self.received = 0
        config = {"UPLOAD_DIR": str(self.folder), "MAX_BODY_SIZE": self.max_body_bytes}
        self._parser = FormParser(kind, self._on_field, self._on_file, boundary=params.get(b"boundary"),
                                  config=config)

    def check_declared_length(self, content_length: str | None) -> None:
        """Refuse at once a body whose declared length is over the limit."""
        if content_length is not None and content_length.isdigit() and int(content_length) > self.max_body_bytes:
            raise TooLarge(f"the request is {megabytes(int(content_length))}, above this server's limit of "
                           f"{megabytes(self.max_file_bytes)} per image")

    def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.max_body_bytes:
            raise TooLarge(f"the request is over {megabytes(self.max_body_bytes)}, above this server's limit of "
                           f"{megabytes(self.max_file_bytes)} per image")
        self._write(chunk)

    def finish(self) -> None:
        self._write(None)

    def _write(self, chunk: bytes | None) -> None:
        from python_multipart.exceptions import FormParserError

        try:
            if chunk is None:
                self._parser.finalize()
            else:
                self._parser.write(chunk)
        except FormParserError as error:
            raise UsageError(f"the request is not a well-formed form ({str(error)[:120]})") from None

    def _decoded(self, raw: bytes | None) -> bytes:
        return urllib.parse.unquote_to_bytes((raw or b"").replace(b"+", b" ")) if self.urlencoded else (raw or b"")

    def _name(self, raw: bytes | None) -> str:
        name = self._decoded(raw).decode("utf-8", "replace")
        if name in self.fields or name in self.files:
            raise UsageError(f"field {name[:40]!r} is sent twice")
        return name

    def _on_field(self, field) -> None:
        name = self._name(field.field_name)
        if name in self.file_fields:
            raise UsageError(f"{name}: send the image as a file")
        try:
            self.fields[name] = self._decoded(field.value).decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"field {name[:40]!r} is not UTF-8 text") from None

    def _on_file(self, file) -> None:
        name = self._name(file.field_name)
        try:
            if name not in self.file_fields:
                raise UsageError(f"unexpected file field {name[:40]!r}: send the images as "
                                 f"{' and '.join(self.file_fields)}")
            shown = display_name(file.file_name, name)
            if file.size > self.max_file_bytes:
                raise TooLarge(f"{shown!r} is {megabytes(file.size)}, above this server's limit of "
                               f"{megabytes(self.max_file_bytes)} per image")
            target = self.folder / f"{name}.upload"
            source = file.file_object
            source.seek(0)
            with open(target, "wb") as stream:
                shutil.copyfileobj(source, stream)
            self.files[name] = Upload(name, target, shown, file.size)
        finally:
            file.close()  # a part spilled to disk is a temporary file in ``folder``: closing deletes it


def check_image(path: Path, name: str, *, max_pixels: int | None) -> Tensor:
    """``load_image`` with its one-line error naming the file as the client knows it, not by its
    place on the server."""
    try:
        return load_image(path, max_pixels=max_pixels)
    except ImageError as error:
        message = str(error).replace(repr(str(path)), repr(name))
        if str(path.parent) in message:  # any other mention of the server's folder is not for the client
            message = f"{name!r} is not an image this server can read"
        raise ImageError(message) from None
