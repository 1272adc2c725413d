"""A package's licence for one of its files, summarised from its Debian ``copyright`` file.

Machine-readable copyright files (DEP-5) are matched the Debian way: the last ``Files:``
paragraph whose pattern matches the file's upstream path wins, and its ``License:`` first line is
the summary ("GPL-3+", "CC-BY-SA-4.0"). Free-form copyright files are summarised only where the
wording is unambiguous ("GNU General Public License version 2 or ... any later version" gives
"GPL-2+"); anything else is "see copyright".
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from dataclasses import dataclass

UNCLEAR = "see copyright"
_GPL = re.compile(
    r"GNU (Lesser |Library )?General Public\s+License,?\s+(as published by the Free Software Foundation;?\s+)?"
    r"(either\s+)?version\s+(\d)(\.\d)?(.{0,80}?any\s+later\s+version)?",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class Paragraph:
    patterns: tuple[str, ...]
    licence: str


@dataclass(frozen=True)
class CopyrightFile:
    paragraphs: tuple[Paragraph, ...]  # DEP-5 "Files:" paragraphs in file order; empty if free-form
    fallback: str  # the summary for a free-form file, or for a path no paragraph matches

    def licence_for(self, upstream_path: str, *, any_extension: bool = False) -> str:
        """The licence of ``upstream_path`` (relative to the upstream source tree).

        With ``any_extension`` a pattern naming the same file with another extension matches too
        (gcompris' build turns ``sea1.jpg`` into ``sea1.webp``).
        """
        found = self.fallback
        stem = posixpath.splitext(upstream_path)[0]
        for paragraph in self.paragraphs:
            for pattern in paragraph.patterns:
                if fnmatch.fnmatchcase(upstream_path, pattern) or (
                    any_extension and "." in posixpath.basename(pattern)
                    and fnmatch.fnmatchcase(stem, posixpath.splitext(pattern)[0])
                ):
                    found = paragraph.licence
        return found


def _fields(paragraph: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = None
    for line in paragraph.splitlines():
        if line[:1] in (" ", "\t") and key is not None:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields


def _free_form_summary(text: str) -> str:
    match = _GPL.search(text)
    if match is None:
        return UNCLEAR
    family = "LGPL" if match.group(1) else "GPL"
    version = match.group(4) + (match.group(5) or "")
    return f"{family}-{version}{'+' if match.group(6) else ''}"


def parse_copyright(text: str) -> CopyrightFile:
    """Read a Debian ``copyright`` file (DEP-5 or free-form)."""
    if not re.match(r"\s*Format:", text):
        return CopyrightFile((), _free_form_summary(text))
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        fields = _fields(block)
        if "files" in fields and "license" in fields:
            licence = fields["license"].splitlines()[0].strip() or UNCLEAR
            paragraphs.append(Paragraph(tuple(fields["files"].split()), licence))
    return CopyrightFile(tuple(paragraphs), UNCLEAR)
