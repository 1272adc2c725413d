"""``styletransfer serve``: a local web page over the library, for looking rather than reading.

One module per job: ``settings`` (what the operator chose), ``forms`` (a request's fields → a
validated job, and what the page offers), ``samples`` (the shipped images, by id), ``uploads``
(request bodies streamed to disk under limits, images checked by the project's loader), ``jobs``
(the bounded queue, its workers and the per-server folder), ``runner`` (what a job does, through
the library's own functions), ``app`` (the FastAPI routes) and ``server`` (uvicorn and signals).

Nothing here imports FastAPI, uvicorn or python-multipart at import time: they are the optional
``web`` extra, and :func:`require_web_extra` names the install command when one is missing.
"""

from __future__ import annotations

import importlib.util

from ..errors import UsageError

WEB_EXTRA_MODULES = ("fastapi", "uvicorn", "python_multipart")
INSTALL_HINT = 'pip install -e ".[web]" (from a checkout) or pip install "styletransfer-lab[web]"'


def missing_web_modules() -> list[str]:
    """The modules of the ``web`` extra that cannot be imported here."""
    missing = []
    for name in WEB_EXTRA_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):  # a module set to None in sys.modules, or a broken one
            missing.append(name)
    return missing


def require_web_extra() -> None:
    """Raise a one-line usage error naming the install command when the ``web`` extra is missing."""
    missing = missing_web_modules()
    if missing:
        raise UsageError(f"styletransfer serve needs the web extra ({', '.join(missing)} not installed): "
                         f"{INSTALL_HINT}")
