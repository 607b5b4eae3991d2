"""`sense-preflight helm upgrade --install RELEASE CHART [flags…]` (and `helm install …`,
`helm template …`): the Helm command line as the partner wrote it, read the way Helm's flag
parser (pflag) reads it.

What the preflight needs is used (-f/--values, every --set*, -n/--namespace, --kube-context,
--kubeconfig, --create-namespace); Helm's other install/upgrade and global flags are
recognised and ignored, with a note; our own run options may be added to the line; anything
else is refused with the list of what is understood. Run as the Helm plugin (`helm preflight
…`, plugin.yaml), Helm takes -n/--kube-context/--kubeconfig off the line and passes them as
HELM_NAMESPACE, HELM_KUBECONTEXT and KUBECONFIG: those are honoured the same way.
"""

from __future__ import annotations

import csv
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from preflight.engine.options import DEFAULT_TIMEOUT_S
from preflight.report.exit_codes import EXIT_BAD_INPUT
from preflight.report.renderers import FORMATS

VALUE, BOOL, OPTIONAL = "value", "bool", "optional"
VALUES, CLUSTER, OURS, HELM = "values", "cluster", "preflight", "helm"
COMMANDS = ("upgrade", "install", "template")
#: Helm's `-o/--output` formats (of its release summary); any other -o value is our report file.
HELM_OUTPUTS = ("table", "json", "yaml")
#: pflag's ParseBool.
TRUE = ("1", "t", "T", "TRUE", "true", "True")
FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True)
class Flag:
    """One flag of the line: its names, whether it takes a value, and what it becomes
    (`run`, the option of `sense-preflight run`; None for Helm's own flags, ignored)."""

    names: tuple[str, ...]
    kind: str
    group: str
    run: str | None = None
    many: bool = False
    #: An OPTIONAL flag takes the next argument too when it is one of these.
    choices: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.names[-1]


def _helm(kind: str, *names: str, choices: tuple[str, ...] = ()) -> list[Flag]:
    """Helm's own flags of one kind; `-g/--generate-name` gives a shorthand too."""
    return [Flag(tuple(name.split("/")), kind, HELM, choices=choices) for name in names]


FLAGS: tuple[Flag, ...] = (
    # Helm's values options (pkg/cli/values): used.
    Flag(("-f", "--values"), VALUE, VALUES, "--values", many=True),
    Flag(("--set",), VALUE, VALUES, "--set", many=True),
    Flag(("--set-string",), VALUE, VALUES, "--set-string", many=True),
    Flag(("--set-file",), VALUE, VALUES, "--set-file", many=True),
    Flag(("--set-json",), VALUE, VALUES, "--set-json", many=True),
    Flag(("--set-literal",), VALUE, VALUES, "--set-literal", many=True),
    # Where the chart goes: used.
    Flag(("-n", "--namespace"), VALUE, CLUSTER, "--namespace"),
    Flag(("--kube-context",), VALUE, CLUSTER, "--context"),
    Flag(("--kubeconfig",), VALUE, CLUSTER, "--kubeconfig"),
    Flag(("--create-namespace",), BOOL, CLUSTER, "--create-namespace"),
    # The preflight's own run options, on the same line.
    Flag(("--only",), VALUE, OURS, "--only", many=True),
    Flag(("--skip",), VALUE, OURS, "--skip", many=True),
    Flag(("--format",), VALUE, OURS, "--format"),
    Flag(("-o", "--output"), VALUE, OURS, "--output"),
    Flag(("--bundle",), VALUE, OURS, "--bundle"),
    Flag(("--strict",), BOOL, OURS, "--strict"),
    Flag(("--read-only",), BOOL, OURS, "--read-only"),
    Flag(("--preflight-timeout",), VALUE, OURS, "--timeout"),
    Flag(("--ca-bundle",), VALUE, OURS, "--ca-bundle"),
    # Helm's own install/upgrade/template, chart and global flags (Helm 3.12+ and 4): ignored.
    *_helm(
        BOOL,
        "--atomic",
        "--wait-for-jobs",
        "-i/--install",
        "--force",
        "--force-replace",
        "--force-conflicts",
        "--no-hooks",
        "--replace",
        "--devel",
        "--dependency-update",
        "--disable-openapi-validation",
        "--skip-crds",
        "--render-subchart-notes",
        "--skip-schema-validation",
        "--enable-dns",
        "--hide-notes",
        "--hide-secret",
        "--take-ownership",
        "--reset-values",
        "--reuse-values",
        "--reset-then-reuse-values",
        "--cleanup-on-fail",
        "--recreate-pods",
        "--rollback-on-failure",
        "-g/--generate-name",
        "--verify",
        "--insecure-skip-tls-verify",
        "--plain-http",
        "--pass-credentials",
        "--debug",
        "--kube-insecure-skip-tls-verify",
        "--validate",
        "--include-crds",
        "--skip-tests",
        "--is-upgrade",
        "--release-name",
    ),
    *_helm(OPTIONAL, "--wait", "--dry-run"),
    *_helm(OPTIONAL, "--server-side", choices=("true", "false", "auto")),
    *_helm(
        VALUE,
        "--timeout",
        "--version",
        "--description",
        "--name-template",
        "--history-max",
        "-l/--labels",
        "--post-renderer",
        "--post-renderer-args",
        "--repo",
        "--username",
        "--password",
        "--cert-file",
        "--key-file",
        "--ca-file",
        "--keyring",
        "--kube-apiserver",
        "--kube-token",
        "--kube-as-user",
        "--kube-as-group",
        "--kube-ca-file",
        "--kube-tls-server-name",
        "--registry-config",
        "--repository-config",
        "--repository-cache",
        "--content-cache",
        "--burst-limit",
        "--qps",
        "--color",
        "--colour",
        "-s/--show-only",
        "--output-dir",
        "--kube-version",
        "-a/--api-versions",
    ),
)
BY_NAME: dict[str, Flag] = {name: flag for flag in FLAGS for name in flag.names}
#: Helm's flags that say how to install, not what: not worth a note.
QUIET = ("--install",)


class LineError(Exception):
    """The helm line cannot be read; each problem is one line for the user. `line` is what
    was read of it, for the list of what was understood."""

    def __init__(self, problems: Sequence[str], line: HelmLine | None = None) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)
        self.line = line


@dataclass
class HelmLine:
    """The line as read: the command, its positional arguments, what each flag gave (by its
    `run` option), and the names of the flags used and of Helm's own flags ignored, in order."""

    command: str
    positionals: list[str] = field(default_factory=list)
    given: dict[str, list[Any]] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def understood(self) -> str:
        """What was read of the line, by flag name (never a value)."""
        parts = [f"{self.command} with {len(self.positionals)} argument(s)"]
        if self.used:
            parts.append(f"used: {', '.join(self.used)}")
        if self.ignored:
            parts.append(f"Helm's own, ignored: {', '.join(self.ignored)}")
        return "; ".join(parts)

    @property
    def release(self) -> str | None:
        return self.positionals[0] if len(self.positionals) == 2 else None

    @property
    def chart(self) -> str | None:
        return self.positionals[-1] if self.positionals else None

    @property
    def local_chart(self) -> str | None:
        """The chart when it is a directory or a packaged chart here (read with --chart)."""
        return self.chart if self.chart and Path(self.chart).exists() else None


def parse(args: Sequence[str]) -> HelmLine:
    """Read `upgrade|install [flags and positionals…]` like pflag; LineError on problems."""
    if not args or args[0] not in COMMANDS:
        raise LineError(
            ["the line must start with `upgrade`, `install` or `template` (the helm subcommand)"]
        )
    line = HelmLine(args[0])
    problems: list[str] = []
    rest = list(args[1:])
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            line.positionals += rest
            break
        if arg.startswith("--"):
            name, eq, inline = arg.partition("=")
            _record(line, problems, name, inline if eq else None, rest)
        elif arg.startswith("-") and len(arg) > 1:
            _shorthands(line, problems, arg[1:], rest)
        else:
            line.positionals.append(arg)
    problems += _positional_problems(line)
    if problems:
        raise LineError(problems, line)
    return line


def _shorthands(line: HelmLine, problems: list[str], letters: str, rest: list[str]) -> None:
    """`-n NS`, `-nNS`, `-n=NS`, and bool letters grouped (`-ig`), as pflag reads them."""
    while letters:
        flag = BY_NAME.get(f"-{letters[0]}")
        if flag is None or flag.kind != BOOL:
            inline = letters[1:].removeprefix("=") or None
            _record(line, problems, f"-{letters[0]}", inline, rest)
            return
        _record(line, problems, f"-{letters[0]}", None, rest)
        letters = letters[1:]


def _record(
    line: HelmLine, problems: list[str], name: str, inline: str | None, rest: list[str]
) -> None:
    """Take one flag's value (inline, or the next argument) and store or ignore it."""
    flag = BY_NAME.get(name)
    if flag is None:
        problems.append(f"unknown flag {name} (neither Helm's nor the preflight's)")
        return
    if flag.kind == VALUE:
        if inline is None:
            if not rest:
                problems.append(f"{name} needs a value")
                return
            inline = rest.pop(0)
        value: Any = inline
    elif flag.kind == BOOL:
        if inline is not None and inline not in TRUE + FALSE:
            problems.append(f"{name} takes true or false after '='")
            return
        value = inline is None or inline in TRUE
    else:  # OPTIONAL: a value only after '=' (pflag's NoOptDefVal), or one of its choices
        if inline is None and rest and rest[0] in flag.choices:
            rest.pop(0)
        value = None
    if flag.run == "--output" and value in HELM_OUTPUTS:
        flag = Flag(("-o", "--output"), VALUE, HELM)  # Helm's format of its release summary
    if flag.run is None:
        _once(line.ignored, flag.name)
        return
    _once(line.used, flag.name)
    if flag.many:
        line.given.setdefault(flag.run, []).append(value)
    else:
        line.given[flag.run] = [value]  # the last one wins, as in pflag


def _once(names: list[str], name: str) -> None:
    if name not in names:
        names.append(name)


def _positional_problems(line: HelmLine) -> list[str]:
    """`upgrade RELEASE CHART`; `install [RELEASE] CHART` (RELEASE only without -g);
    `template [RELEASE] CHART`."""
    found = len(line.positionals)
    one = (line.command == "template" and found == 1) or (
        line.command == "install" and "--generate-name" in line.ignored
    )
    wanted = 1 if one else 2
    if found == wanted:
        return []
    usage = "CHART" if wanted == 1 else "RELEASE CHART"
    if found < wanted:
        return [f"helm {line.command} needs {usage}"]
    return [
        f"helm {line.command} takes {usage}, this line has {found} arguments besides its flags "
        "(is a flag's value split by a space? quote it)"
    ]


def run_argv(line: HelmLine, env: Mapping[str, str]) -> list[str]:
    """The `sense-preflight run` arguments of the line. Helm's environment fills what the
    line leaves out, as for `helm` itself and for a Helm plugin; without any namespace it is
    the kubeconfig context's, else `default`, as Helm resolves it."""
    given = dict(line.given)
    if line.local_chart:
        given["--chart"] = [line.local_chart]
    if "--values" in given:
        given["--values"] = [path for item in given["--values"] for path in _slice(item)]
    for option, variable in (
        ("--kubeconfig", "HELM_KUBECONFIG"),
        ("--context", "HELM_KUBECONTEXT"),
    ):
        if option not in given and env.get(variable):
            given[option] = [env[variable]]
    if "--namespace" not in given:
        from checks.kubernetes.api import context_namespace

        kubeconfig = given.get("--kubeconfig", [None])[0]
        namespace = env.get("HELM_NAMESPACE") or context_namespace(
            Path(kubeconfig) if kubeconfig else None, given.get("--context", [None])[0]
        )
        given["--namespace"] = [namespace or "default"]
    problems = _value_problems(given)
    if problems:
        raise LineError(problems, line)
    argv: list[str] = []
    for option, values in given.items():
        for value in values:
            if value is not False:  # a bool flag given as --flag=false
                argv.append(option if value is True else f"{option}={value}")
    return argv


def _value_problems(given: dict[str, list[Any]]) -> list[str]:
    """What `run` would refuse under its own option names (--format, --timeout) said under the
    names of the helm line."""
    problems = []
    if given.get("--format", ["text"])[-1] not in FORMATS:
        problems.append(f"--format must be one of {', '.join(sorted(FORMATS))}")
    timeout = given.get("--timeout", [str(DEFAULT_TIMEOUT_S)])[-1]
    try:
        seconds = float(timeout)
    except ValueError:
        seconds = 0.0
    if seconds < 0.1:
        problems.append("--preflight-timeout takes seconds per check (at least 0.1)")
    return problems


def _slice(value: str) -> list[str]:
    """pflag's StringSlice: `-f a.yaml,b.yaml` is two files (read as one CSV record)."""
    return [item for item in next(csv.reader([value]), []) if item]


def notes(line: HelmLine) -> list[str]:
    """One line per thing the user should know about the flags that were ignored."""
    shown = [name for name in line.ignored if name not in QUIET]
    found: list[str] = []
    if shown:
        found.append(f"Helm's own flags, not used by the preflight: {', '.join(shown)}")
    if "--timeout" in line.ignored:
        found.append(
            "Helm's --timeout is how long Helm waits for the release, not the preflight's "
            f"deadline per check ({DEFAULT_TIMEOUT_S:g}s): give that as --preflight-timeout SECONDS"
        )
    if "--output" in line.ignored:
        found.append(
            "-o table|json|yaml is the format of Helm's release summary; the preflight's "
            "report takes --format json (and -o FILE)"
        )
    if {"--reuse-values", "--reset-then-reuse-values"} & set(line.ignored):
        found.append(
            "--reuse-values: the installed release's values are not read from this line; "
            f"run `sense-preflight run --release {line.release or 'RELEASE'}` with the same -f "
            "and --set* to check them"
        )
    if line.chart and not line.local_chart:
        found.append(
            f"the chart {line.chart} is not a local directory or .tgz: its defaults and "
            "schema are not read (helm pull it and put the .tgz on the line)"
        )
    return found


def understood() -> list[str]:
    """Every flag a helm line may hold, by group (the help)."""
    groups = (
        (VALUES, "values (used)"),
        (CLUSTER, "cluster (used)"),
        (OURS, "the preflight's own"),
        (HELM, "Helm's own (ignored)"),
    )
    lines = []
    for group, title in groups:
        names = ", ".join("/".join(flag.names) for flag in FLAGS if flag.group == group)
        lines.append(
            textwrap.fill(f"{title}: {names}", 96, initial_indent="  ", subsequent_indent="    ")
        )
    return lines


USAGE = """\
usage: sense-preflight helm upgrade --install RELEASE CHART [helm flags] [preflight flags]
       sense-preflight helm install RELEASE CHART [helm flags] [preflight flags]
       sense-preflight helm template [RELEASE] CHART [helm flags] [preflight flags]
       helm preflight upgrade --install RELEASE CHART …   (the Helm plugin, plugin.yaml)

Paste the helm line after `sense-preflight helm`: the preflight reads the same values as Helm.
Helm's --timeout stays Helm's; the preflight's deadline per check is --preflight-timeout.
Without -n, HELM_NAMESPACE, then the kubeconfig context's namespace, then `default`.

Flags understood:"""


def run_args(args: Sequence[str], env: Mapping[str, str]) -> list[str] | None:
    """The `run` arguments for a helm line, after printing what was ignored; None after
    printing the help. A line that cannot be read exits 2 with each problem and what was
    understood."""
    if not args or any(arg in ("-h", "--help") for arg in args):
        click.echo("\n".join([USAGE, *understood()]))
        return None
    try:
        line = parse(args)
        argv = run_argv(line, env)
    except LineError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        if exc.line is not None:
            click.echo(f"understood: {exc.line.understood()}", err=True)
        click.echo("every flag a helm line may hold: sense-preflight helm --help", err=True)
        sys.exit(EXIT_BAD_INPUT)
    for note in notes(line):
        click.echo(f"note: {note}", err=True)
    return argv
