"""Markdown, to paste into a support ticket."""

from __future__ import annotations

from preflight.report.result import Report, Status

_ICON = {
    Status.PASS: "✅ pass",
    Status.WARN: "⚠️ warn",
    Status.FAIL: "❌ fail",
    Status.SKIP: "⏭️ skip",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    summary = report.summary
    lines = [
        f"## sense-preflight {report.version}",
        "",
        f"**{summary['pass']} passed, {summary['warn']} warnings"
        + (f" ({report.accepted} accepted)" if report.accepted else "")
        + f", {summary['fail']} failed, "
        f"{summary['skip']} skipped** in {report.duration_s:.1f}s",
        "",
        "| Status | Check | Result | Time |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {_ICON[c.status]}{' (accepted)' if c.accepted else ''} | `{c.id}` | "
        f"{_cell(c.message)} | {c.duration_s:.2f}s |"
        for c in report.checks
    ]
    for check in report.checks:
        if check.status not in (Status.FAIL, Status.WARN):
            continue
        lines += ["", f"### `{check.id}` — {check.title}", ""]
        if check.accepted:
            lines += ["**Accepted failure** (`--accept`): it fails, and was agreed.", ""]
        if check.remediation:
            lines += [f"**What to do:** {check.remediation}", ""]
        lines += ["| Step | Status | Detail | Time |", "|---|---|---|---|"]
        lines += [
            f"| {s.name} | {s.status.value} | {_cell(s.detail)} | {s.duration_s:.2f}s |"
            for s in check.steps
        ]
        if check.facts:
            lines += [
                "",
                "Facts: " + ", ".join(f"`{k}`={_cell(str(v))}" for k, v in check.facts.items()),
            ]
    return "\n".join(lines) + "\n"
