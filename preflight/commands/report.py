"""`sense-preflight report`: a saved report (a support bundle, or the JSON of `--format json`)
rendered again in any format, without running anything. The saved report was redacted when
it was written; it is rendered as it is."""

from __future__ import annotations

import io
import sys
import tarfile
import zlib
from pathlib import Path
from typing import Literal

from preflight.commands.common import fail
from preflight.report.exit_codes import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK
from preflight.report.renderers import renderer
from preflight.report.renderers.json_reader import ReportFormatError, parse_report
from preflight.report.result import Report

BUNDLE_REPORT = "sense-preflight-bundle/report.json"
MAX_BYTES = 64 * 1024 * 1024  # far above any real report; a bigger input is not one
_GZIP_MAGIC = b"\x1f\x8b"


class Unreadable(Exception):
    """The input is no saved report this version reads; the message is one line."""


def rerender(saved: str, format_: str, output: Path | None) -> int:
    """Render the saved report `saved` ("-": stdin) in `format_`; return the exit code."""
    try:
        report = load_saved(saved)
    except Unreadable as exc:
        fail(EXIT_BAD_INPUT, str(exc))
    return _write(renderer(format_)(report), output)


def show_diff(old: str, new: str, format_: str, output: Path | None) -> int:
    """Render what changed from the saved report `old` to `new`; return the exit code."""
    from preflight.report.diff import DIFF_FORMATS, diff_reports, render_diff

    if format_ not in DIFF_FORMATS:
        fail(EXIT_BAD_INPUT, f"--diff renders as {', '.join(DIFF_FORMATS)}, not {format_}")
    try:
        before, after = load_saved(old), load_saved(new)
    except Unreadable as exc:
        fail(EXIT_BAD_INPUT, str(exc))
    return _write(render_diff(diff_reports(before, after), format_, old, new), output)


def _write(text: str, output: Path | None) -> int:
    if output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(EXIT_INTERNAL, f"cannot write {output}: {exc.strerror or exc}")
    return EXIT_OK


def load_saved(saved: str) -> Report:
    """The Report in a support bundle (.tar.gz) or a JSON report file ("-": stdin)."""
    name = "stdin" if saved == "-" else saved
    data = _read(saved, name)
    if data[:2] == _GZIP_MAGIC or tarfile.is_tarfile(io.BytesIO(data)):
        mode: Literal["r:gz", "r:"] = "r:gz" if data[:2] == _GZIP_MAGIC else "r:"
        where, data = f"{name}: {BUNDLE_REPORT}", _bundle_report(data, mode, name)
    else:
        where = name
    try:
        return parse_report(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise Unreadable(
            f"{where}: not a sense-preflight bundle or JSON report (not text)"
        ) from None
    except ReportFormatError as exc:
        raise Unreadable(f"{where}: {exc}") from None


def _read(saved: str, name: str) -> bytes:
    try:
        if saved == "-":
            data = sys.stdin.buffer.read(MAX_BYTES + 1)
        else:
            with open(saved, "rb") as file:
                data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise Unreadable(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise Unreadable(f"{name}: over {MAX_BYTES // 2**20} MiB, not a saved report")
    return data


def _bundle_report(data: bytes, mode: Literal["r:gz", "r:"], name: str) -> bytes:
    """The report.json of a support bundle."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as archive:
            member = next((m for m in archive.getmembers() if m.name == BUNDLE_REPORT), None)
            extracted = archive.extractfile(member) if member is not None else None
            if member is None or extracted is None:
                raise Unreadable(f"{name}: not a sense-preflight bundle (no {BUNDLE_REPORT})")
            if member.size > MAX_BYTES:
                raise Unreadable(f"{name}: {BUNDLE_REPORT} is over {MAX_BYTES // 2**20} MiB")
            return extracted.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        reason = " ".join(str(exc).split())
        raise Unreadable(f"{name}: not a readable sense-preflight bundle ({reason})") from None
