"""HTML: one self-contained page for a ticket attachment or a browser.

The verdict and the run's facts on top, then a matrix: a row per check, a column per layer
(the design's layers in their order, each check's own steps after the layer they follow), so
the first red cell of a row is the layer that broke. Each row is a <details>: opening it shows
every step's detail and remediation and the check's facts. Inline CSS and a little script
(expand all, open everything to print), both pinned by a Content-Security-Policy hash, so the
page loads nothing; without the script it reads the same. Every text is HTML-escaped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from preflight.report.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, exit_code
from preflight.report.renderers.json_report import CONTRACT_VERSION
from preflight.report.result import CheckResult, Report, Status, StepResult

LAYERS = ("config", "dns", "tcp", "tls", "auth", "version", "permissions", "roundtrip")
VALUES_CHECK = "values"  # its steps are the values' problems, all at the config layer
UNREACHED = "unreached"  # a cell's class: the check stopped at an earlier layer
_LABEL = {Status.PASS: "pass", Status.WARN: "warn", Status.FAIL: "FAIL", Status.SKIP: "skip"}


def render_html(report: Report) -> str:
    """The page: a pure function of the (redacted) report."""
    columns = layer_columns(report.checks)
    style = _STYLE + _grid_style(len(columns))
    verdict, headline = _verdict(report)
    rows = [_row(check, _cells(check, columns, report.checks)) for check in report.checks]
    return _PAGE.format(
        csp=_csp(style, _SCRIPT),
        title=_text(f"sense-preflight: {verdict}, {headline}"),
        style=style,
        header=_header(report, verdict, headline),
        head=_matrix_head(columns),
        rows="\n".join(rows),
        version=_text(report.version),
        contract=CONTRACT_VERSION,
        script=_SCRIPT,
    )


def layer_columns(checks: Sequence[CheckResult]) -> list[str]:
    """The matrix's columns: the design's layers in their order, and every other step right
    after the layer it first followed."""
    order = {layer: (rank, 0, 0) for rank, layer in enumerate(LAYERS)}
    for check in checks:
        rank = 0
        for name in _step_columns(check):
            if name in LAYERS:
                rank = LAYERS.index(name)
            else:
                order.setdefault(name, (rank, 1, len(order)))
    return sorted(order, key=order.__getitem__)


def _step_columns(check: CheckResult) -> list[str]:
    """The column of each of the check's steps."""
    if check.id == VALUES_CHECK:
        return ["config"] * len(check.steps)
    return [step.name for step in check.steps]


@dataclass(frozen=True)
class _Cell:
    """One check at one layer: its steps there, or why it has none."""

    column: str
    state: str  # a Status value; UNREACHED; or "" where the check has no such step
    steps: tuple[StepResult, ...] = ()


def _cells(check: CheckResult, columns: list[str], checks: Sequence[CheckResult]) -> list[_Cell]:
    """The check's row. After the step that failed, a layer the check would have walked (a
    design layer, or a step of a check of the same component) was not reached."""
    placed = list(zip(_step_columns(check), check.steps, strict=True))
    at: dict[str, list[StepResult]] = {}
    for column, step in placed:
        at.setdefault(column, []).append(step)
    failed = [columns.index(column) for column, step in placed if step.status is Status.FAIL]
    stop = min(failed, default=len(columns))
    expected = (
        {"config"} if check.id == VALUES_CHECK else {*LAYERS, *_component_steps(check, checks)}
    )
    cells = []
    for index, column in enumerate(columns):
        steps = tuple(at.get(column, ()))
        if steps:
            worst = max(steps, key=lambda s: (s.status.rank, s.status is Status.SKIP))
            cells.append(_Cell(column, worst.status.value, steps))
        else:
            reached = index < stop or column not in expected
            cells.append(_Cell(column, "" if reached else UNREACHED))
    return cells


def _component_steps(check: CheckResult, checks: Sequence[CheckResult]) -> set[str]:
    return {
        step.name for other in checks if other.component == check.component for step in other.steps
    }


def _verdict(report: Report) -> tuple[str, str]:
    """The page's verdict (as the run's exit code has it) and a headline."""
    counts = report.summary
    code = exit_code(report, strict=False)
    if code == EXIT_BAD_INPUT:
        values = [c for c in report.checks if c.id == VALUES_CHECK]
        problems = sum(s.status is Status.FAIL for c in values for s in c.steps)
        return "BAD VALUES", f"{problems} problem(s) in the values, no dependency was checked"
    if code == EXIT_FAILED:
        return "FAIL", f"{counts['fail']} of {len(report.checks)} checks failed"
    if counts["warn"]:
        return "PASS WITH WARNINGS", f"{counts['warn']} warning(s), nothing failed"
    return "PASS", "every check that applies passed"


def _header(report: Report, verdict: str, headline: str) -> str:
    state = {"FAIL": "fail", "BAD VALUES": "fail", "PASS": "pass"}.get(verdict, "warn")
    counts = report.summary
    tally = "".join(
        f'<li class="{status}"><b>{counts[status]}</b> {words}</li>'
        for status, words in (
            ("fail", "failed"),
            ("warn", "warnings"),
            ("pass", "passed"),
            ("skip", "skipped"),
        )
    )
    where = {True: "in the cluster (a pod)", False: "outside the cluster (a laptop or CI)"}
    started = report.started.replace("T", " ").replace("Z", " UTC") if report.started else None
    facts = [
        ("tool", f"sense-preflight {report.version}"),
        ("started", started or "not recorded"),
        ("took", _duration(report.duration_s)),
        ("ran", where[report.in_cluster] if report.in_cluster is not None else "not recorded"),
        ("values", ", ".join(report.values_files) or "no values file"),
    ]
    run = "".join(
        f"<div><dt>{_text(key)}</dt><dd>{_text(value)}</dd></div>" for key, value in facts
    )
    return (
        f'<header class="verdict {state}"><h1><span class="badge {state}">{_text(verdict)}</span> '
        f'{_text(headline)}</h1><ul class="counts">{tally}</ul><dl class="run">{run}</dl></header>'
    )


def _matrix_head(columns: list[str]) -> str:
    heads = "".join(
        f'<span class="h-layer{"" if column in LAYERS else " own"}" title="{_text(column)}">'
        f"<span>{_text(column)}</span></span>"
        for column in columns
    )
    return f'<div class="row head" aria-hidden="true"><span class="c-id h-check">Check</span>{heads}</div>'


def _row(check: CheckResult, cells: list[_Cell]) -> str:
    if check.status is Status.SKIP and all(cell.state in ("", "skip") for cell in cells):
        line = f'<span class="span-skip">skipped: {_text(check.message)}</span>'
    else:
        line = "".join(_cell(cell) for cell in cells)
    # bad values: nothing else ran, the problems are the page
    opened = " open" if check.id == VALUES_CHECK and check.status is Status.FAIL else ""
    return (
        f'<details class="check {check.status.value}" id="{_anchor(check)}" '
        f'data-check="{_text(check.id)}"{opened}><summary class="row">'
        f'<span class="c-id" title="{_text(check.id)}: {_text(check.title)}">'
        f"<code>{_text(check.id)}</code><small>{_badge(check.status)}{_ACCEPTED if check.accepted else ''} "
        f"{_text(check.message)}</small></span>"
        f"{line}</summary>{_body(check)}</details>"
    )


_ACCEPTED = ' <span class="badge warn">accepted failure (--accept)</span>'


def _cell(cell: _Cell) -> str:
    if not cell.state:
        return f'<span class="cell none" data-layer="{_text(cell.column)}"></span>'
    if cell.state == UNREACHED:
        return (
            f'<span class="cell {UNREACHED}" data-layer="{_text(cell.column)}" '
            f'title="{_text(cell.column)}: not reached (an earlier layer failed)"><b>not reached</b></span>'
        )
    seconds = sum(step.duration_s for step in cell.steps)
    tip = "\n".join(
        f"{step.name}: {step.status.value}, {_duration(step.duration_s)}"
        + (f": {step.detail}" if step.detail else "")
        for step in cell.steps
    )
    status = Status(cell.state)
    alike = sum(step.status is status for step in cell.steps)
    count = f" &times;{alike}" if alike > 1 else ""
    label = _LABEL[status]
    return (
        f'<span class="cell {cell.state}" data-layer="{_text(cell.column)}" title="{_text(tip)}">'
        f"<b>{label}{count}</b><i>{_text(_duration(seconds))}</i></span>"
    )


def _body(check: CheckResult) -> str:
    parts = [f'<p class="title">{_text(check.title)}</p>']
    parts.append(f'<p class="message">{_badge(check.status)} {_text(check.message)}</p>')
    if check.remediation:
        parts.append(f'<p class="fix"><strong>What to do:</strong> {_text(check.remediation)}</p>')
    if check.steps:
        parts.append(_steps_table(check.steps))
    if check.facts:
        facts = "".join(
            f"<dt>{_text(str(key))}</dt><dd>{_text(_fact(value))}</dd>"
            for key, value in check.facts.items()
        )
        parts.append(f'<h3>Facts</h3><dl class="facts">{facts}</dl>')
    parts.append(f'<p class="took">{_text(f"{check.id} took {_duration(check.duration_s)}")}</p>')
    return f'<div class="body">{"".join(parts)}</div>'


def _steps_table(steps: Sequence[StepResult]) -> str:
    """Every step: its result, detail, time, and what to do where any step says."""
    fixes = any(step.remediation for step in steps)
    head = "<th>Step</th><th>Result</th><th>Detail</th>" + ("<th>What to do</th>" if fixes else "")
    rows = "".join(
        f'<tr class="{s.status.value}"><td><code>{_text(s.name)}</code></td>'
        f"<td>{_badge(s.status)}</td><td>{_text(s.detail)}</td>"
        + (f"<td>{_text(s.remediation)}</td>" if fixes else "")
        + f"<td>{_text(_duration(s.duration_s))}</td></tr>"
        for s in steps
    )
    return f'<table class="steps"><thead><tr>{head}<th>Time</th></tr></thead><tbody>{rows}</tbody></table>'


def _badge(status: Status) -> str:
    return f'<span class="badge {status.value}">{_LABEL[status]}</span>'


def _fact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _duration(seconds: float) -> str:
    """`<1 ms`, `12 ms`, `1.2 s` (text: escape it in the page)."""
    if seconds < 0.001:
        return "<1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def _anchor(check: CheckResult) -> str:
    return "check-" + re.sub(r"[^A-Za-z0-9._-]", "-", check.id)


def _text(value: str) -> str:
    """Text for an element or an attribute."""
    return escape(value, quote=True)


def _csp(style: str, script: str) -> str:
    """Nothing may load; only this page's own style and script run."""

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    return (
        f"default-src 'none'; style-src {digest(style)}; script-src {digest(script)}; "
        "img-src 'none'; base-uri 'none'; form-action 'none'"
    )


def _grid_style(columns: int) -> str:
    return f".row{{grid-template-columns:minmax(12rem,20rem) repeat({columns},minmax(2.5rem,4.5rem))}}\n"


_STYLE = """\
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--panel:#f6f8fa;--link:#0a58ca;
--pass-bg:#dcf2e6;--pass-fg:#0b5a39;--pass-line:#3f9c72;
--warn-bg:#ffefb8;--warn-fg:#5c3b00;--warn-line:#a06d00;
--fail-bg:#b3261e;--fail-fg:#fff;--fail-line:#6e120c;
--skip-bg:#eef0f2;--skip-fg:#4a545e;--skip-line:#8c96a0}
@media screen and (prefers-color-scheme:dark){:root{--bg:#0f1419;--fg:#e6e8eb;--muted:#9aa5b1;--line:#30363d;--panel:#161b22;--link:#79b8ff;
--pass-bg:#113a2c;--pass-fg:#8be0bb;--pass-line:#2f8f66;
--warn-bg:#463400;--warn-fg:#ffdc7a;--warn-line:#c4961c;
--fail-bg:#ff7b6e;--fail-fg:#1c0402;--fail-line:#ffb3ab;
--skip-bg:#1d242c;--skip-fg:#aab4be;--skip-line:#5b6671}}
*{box-sizing:border-box}
body{margin:0;padding:1rem 1.25rem 2rem;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
code{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:.95em}
a{color:var(--link)}
h1{font-size:1.35rem;margin:0;display:flex;gap:.6rem;align-items:center;flex-wrap:wrap}
h2{font-size:1rem;margin:0}
h3{font-size:.9rem;margin:.8rem 0 .3rem}
.verdict{border:1px solid var(--line);border-left-width:.45rem;border-radius:.4rem;padding:.7rem 1.1rem;background:var(--panel)}
.verdict.fail{border-left-color:var(--fail-bg)}.verdict.warn{border-left-color:var(--warn-line)}.verdict.pass{border-left-color:var(--pass-line)}
.badge{display:inline-block;min-width:3.2em;padding:.05em .45em;border-radius:.3em;border:1px solid;font-size:.8rem;font-weight:700;text-align:center;letter-spacing:.02em;vertical-align:.08em}
h1 .badge{font-size:1.05rem}
.badge.pass{background:var(--pass-bg);color:var(--pass-fg);border-color:var(--pass-line)}
.badge.warn{background:var(--warn-bg);color:var(--warn-fg);border-color:var(--warn-line);border-style:dashed}
.badge.fail{background:var(--fail-bg);color:var(--fail-fg);border-color:var(--fail-line)}
.badge.skip{background:var(--skip-bg);color:var(--skip-fg);border-color:var(--skip-line);border-style:dotted;font-weight:400}
.verdict{display:grid;grid-template-columns:1fr auto;gap:.3rem 1.5rem;align-items:center}
.counts{list-style:none;display:flex;flex-wrap:wrap;gap:1.1rem;margin:0;padding:0}
.counts b{font-size:1.1rem}
.run{grid-column:1/-1;display:flex;flex-wrap:wrap;gap:.1rem 1.4rem;margin:0;color:var(--muted);font-size:.9rem}
.run div{display:flex;gap:.4rem}.run dt{font-weight:600}.run dd{margin:0;color:var(--fg)}
.bar{display:flex;gap:1rem;align-items:center;margin:.9rem 0 .4rem}
.controls{display:flex;gap:.5rem}.controls[hidden]{display:none}
.controls button{font:inherit;font-size:.85rem;padding:.15rem .6rem;border:1px solid var(--line);border-radius:.3rem;background:var(--panel);color:var(--fg);cursor:pointer}
.matrix{overflow-x:auto;border:1px solid var(--line);border-radius:.4rem}
.rows{min-width:min-content}
.row{display:grid;gap:2px;align-items:stretch;padding:1px 4px 1px 0}
.head{align-items:end;border-bottom:1px solid var(--line);padding-top:.4rem}
.h-layer{display:flex;justify-content:center;font-size:.78rem;font-weight:600;padding-bottom:.25rem}
.h-layer span{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap}
.h-layer.own{font-weight:400;font-style:italic;color:var(--muted)}
.h-check{font-weight:600;align-self:end}
.c-id{position:sticky;left:0;z-index:1;background:var(--bg);padding:.1rem .5rem .1rem 1.4rem;min-width:0;overflow:hidden;line-height:1.25}
.c-id code,.c-id small{display:block;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.c-id code{font-weight:600}.c-id small{color:var(--muted)}.c-id small .badge{font-size:.7rem;min-width:2.8em}
details.check{border-top:1px solid var(--line)}
details.check:first-of-type{border-top:0}
summary{list-style:none;cursor:pointer}
summary::-webkit-details-marker{display:none}
summary .c-id::before{content:"\\25B8";position:absolute;left:.45rem;top:.1rem;color:var(--muted)}
details[open]>summary .c-id::before{content:"\\25BE"}
summary:hover .c-id,summary:focus-visible .c-id{background:var(--panel)}
summary:focus-visible{outline:2px solid var(--link);outline-offset:-2px}
:target>summary .c-id{box-shadow:inset .25rem 0 0 var(--link)}
.cell{display:flex;flex-direction:column;justify-content:center;align-items:center;min-height:2.1rem;border-radius:.25rem;border:1px solid transparent;font-size:.72rem;line-height:1.15;text-align:center}
.cell b{font-size:.76rem}.cell i{font-style:normal;font-size:.66rem;opacity:.9;white-space:nowrap}
.cell.pass{background:var(--pass-bg);color:var(--pass-fg);border-color:var(--pass-line)}
.cell.warn{background:var(--warn-bg) repeating-linear-gradient(135deg,transparent 0 5px,rgba(0,0,0,.07) 5px 7px);color:var(--warn-fg);border:1px dashed var(--warn-line)}
.cell.fail{background:var(--fail-bg);color:var(--fail-fg);border:2px solid var(--fail-line)}
.cell.fail b{font-weight:800;letter-spacing:.03em}
.cell.skip{background:var(--skip-bg);color:var(--skip-fg);border:1px dotted var(--skip-line)}
.cell.unreached{border:1px dotted var(--line);color:var(--muted)}
.cell.unreached b{font-weight:400;font-size:.6rem}
.span-skip{grid-column:2/-1;align-self:center;color:var(--muted);font-style:italic;padding-left:.4rem;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.body{position:sticky;left:0;max-width:min(76rem,calc(100vw - 4rem));padding:.3rem 1rem .9rem 1.4rem}
.body .title{margin:.2rem 0;color:var(--muted)}
.body .message{margin:.3rem 0}
.fix{margin:.4rem 0;padding:.45rem .7rem;border-left:.3rem solid var(--warn-line);background:var(--panel)}
.steps{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.85rem}
.steps th,.steps td{border:1px solid var(--line);padding:.25rem .45rem;text-align:left;vertical-align:top}
.steps th{background:var(--panel)}
.steps td:first-child,.steps td:nth-child(2),.steps td:last-child{white-space:nowrap}
.steps td{overflow-wrap:anywhere}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .9rem;margin:0;font-size:.85rem}
.facts dt{font-family:ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace}
.facts dd{margin:0;overflow-wrap:anywhere}
.took{color:var(--muted);font-size:.8rem;margin:.5rem 0 0}
.legend{display:flex;flex-wrap:wrap;gap:.4rem 1rem;align-items:center;color:var(--muted);font-size:.8rem;margin:.6rem 0}
.legend .cell{display:inline-flex;min-height:0;padding:.1rem .4rem;vertical-align:middle}
footer{margin-top:1.2rem;color:var(--muted);font-size:.8rem}
@page{size:landscape;margin:10mm}
@media print{body{padding:0;font-size:9pt}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
.controls{display:none}.matrix{overflow:visible;border:0}.c-id,.body{position:static}
summary .c-id::before{content:none}.c-id{padding-left:.3rem}details.check{break-inside:avoid}a{text-decoration:none}}
@media print{details::details-content{content-visibility:visible;display:block}}
"""

# Expand or collapse every row; open them all to print; open a row a link points to.
_SCRIPT = """\
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll("details.check"));
  var controls = document.getElementById("controls");
  var printed = [];
  function setAll(open) { rows.forEach(function (row) { row.open = open; }); }
  function openTarget() {
    var target = document.getElementById(location.hash.slice(1));
    if (target && target.tagName === "DETAILS") { target.open = true; }
  }
  controls.hidden = false;
  controls.addEventListener("click", function (event) {
    var open = event.target.getAttribute("data-open");
    if (open !== null) { setAll(open === "true"); }
  });
  window.addEventListener("beforeprint", function () {
    printed = rows.map(function (row) { return row.open; });
    setAll(true);
  });
  window.addEventListener("afterprint", function () {
    rows.forEach(function (row, i) { row.open = printed[i]; });
  });
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
"""

_LEGEND = (
    '<p class="legend"><span>Each cell is one layer of a check:</span>'
    '<span class="cell pass"><b>pass</b></span><span class="cell warn"><b>warn</b></span>'
    '<span class="cell fail"><b>FAIL</b></span><span class="cell skip"><b>skip</b></span>'
    f'<span class="cell {UNREACHED}"><b>not reached</b></span>'
    "<span>(an earlier layer failed); blank: the check has no such step. "
    "Open a row for every step's detail, what to do, and the facts.</span></p>"
)

_PAGE = (
    """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
{header}
<main>
<div class="bar"><h2>Checks by layer</h2><div class="controls" id="controls" hidden><button type="button" data-open="true">Expand all</button><button type="button" data-open="false">Collapse all</button></div></div>
<div class="matrix"><div class="rows">
{head}
{rows}
</div></div>
"""
    + _LEGEND.replace("{", "{{").replace("}", "}}")
    + """
</main>
<footer>sense-preflight {version} · JSON report contract {contract} · made from the redacted report: no secret value is in this page.</footer>
<script>{script}</script>
</body>
</html>
"""
)
