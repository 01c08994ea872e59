"""Write one benchmark's section of docs/BENCHMARKS.md (each script owns one marked section)."""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"
_HEADER = """# Benchmarks

Every figure below was written by the script named in its section, with the command that made it.
Machine: the project's 2-core, 24 GB sandbox (shared and noisy: compare ratios within one run).
Re-run a section with its command; the script replaces only its own section.
"""


def machine_line(threads: int | None = None, when: str | None = None) -> str:
    """One line describing where and when (default: now) a figure was measured."""
    cpus = os.cpu_count()
    when = when or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    extra = f", threads {threads}" if threads is not None else ""
    return f"_Measured {when}; Python {platform.python_version()}, {cpus} CPUs{extra}._"


def write_section(name: str, markdown: str, argv: Sequence[str] | None = None) -> Path:
    """Replace the section ``name`` of docs/BENCHMARKS.md (create file/section as needed).

    The section is delimited by ``<!-- BEGIN name -->`` / ``<!-- END name -->``; the command that
    produced it (``argv``, by default ``sys.argv``) is recorded at its end.
    """
    command = "python " + " ".join(sys.argv if argv is None else argv)
    body = (
        f"<!-- BEGIN {name} -->\n{markdown.rstrip()}\n\nCommand: `{command}`\n<!-- END {name} -->"
    )
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else _HEADER
    pattern = re.compile(
        rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S
    )
    text = (
        pattern.sub(lambda _: body, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + body + "\n"
    )
    BENCHMARKS_MD.parent.mkdir(parents=True, exist_ok=True)
    tmp = BENCHMARKS_MD.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, BENCHMARKS_MD)
    return BENCHMARKS_MD
