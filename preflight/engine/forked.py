"""Part of a run in a child process forked the moment the run starts, each of its results sent
back the moment it has it.

One interpreter runs Python on one core at a time, and most of a full run's CPU is the checks'
client libraries: their imports and set-up (boto3 and its S3 model, clickhouse-connect,
psycopg, the Kubernetes client). In threads they took turns on one core while the others
idled. So a run forks once, before the values load: the child imports its share's clients
while the parent loads the values and runs the rules (a third of a full run, on one core), then
takes its checks from the parent and runs them, while the parent runs the rest. The share is
decided from the command line's --only/--skip alone: whole components go to one side, and so
do components whose modules name the same first client in `CLIENTS` (postgres and
custom-layers, kubernetes and gpu): that client is imported once. The sides are balanced by
each check module's `CPU_S`, its checks' CPU seconds in a run, clients included, as the bench
measured them (only their ratios matter), the parent's side starting with the values' work.

The child is forked only where that is safe and useful: on Linux (macOS's system frameworks do
not survive a fork), with at least two CPUs usable (the affinity, capped by a cgroup's quota: a
pod's CPU limit), unless `SENSE_PREFLIGHT_PROCESSES=1`, and only while no other thread runs — a
thread holding an import or logging lock at fork time would leave the child stuck on it.
Elsewhere (the exporter, --wait, a one-CPU pod) every check runs in a thread, as before.

The child stops, running its pending cleanups first as on Ctrl-C, when the parent closes the
control pipe: on the parent's Ctrl-C, when it ends without checks for the child (bad values),
and when it dies. A terminal's Ctrl-C reaches both processes; the child leaves it to the
parent. Its checks' logs come back in their results.
"""

from __future__ import annotations

import gc
import importlib
import math
import os
import pickle
import queue
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from io import BufferedWriter
from pathlib import Path
from typing import Any, NoReturn

from preflight.engine import preload
from preflight.engine.check import Check
from preflight.engine.deadline import Deadline, timeout_message
from preflight.engine.options import RunOptions
from preflight.engine.registry import chosen_components
from preflight.report.exit_codes import EXIT_INTERRUPTED
from preflight.report.result import CheckResult, Status
from preflight.values.load import Values

ENV = "SENSE_PREFLIGHT_PROCESSES"
#: The CPU of a check module that does not say (`CPU_S`): a light HTTP check.
DEFAULT_CPU_S = 0.05
#: The parent's CPU before it hands the child its checks (values, rules, the check list), on
#: the scale of `CPU_S`: the child's imports meanwhile are its head start.
VALUES_CPU_S = 0.15
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")

Send = Callable[[str, Check, CheckResult | None], None]
#: The child's part, once handed its checks: (check ids, values, options, deadline, send).
Share = Callable[[Sequence[str], Values, RunOptions, Deadline, Send], object]
#: What the parent hands the child: (check ids, values, options, deadline).
Order = tuple[list[str], Values, RunOptions, Deadline]


class BadSetting(ValueError):
    """SENSE_PREFLIGHT_PROCESSES holds something other than 1 or 2."""


def processes() -> int:
    """How many processes a run may use now: 2 where a child can be forked safely, else 1.
    Raises BadSetting for a value of SENSE_PREFLIGHT_PROCESSES other than 1 or 2."""
    setting = os.environ.get(ENV, "")
    if setting not in ("", "1", "2"):
        raise BadSetting(f"{ENV} must be 1 or 2, not {setting!r}")
    if setting == "1" or not can_fork():
        return 1
    return 2 if usable_cpus() >= 2 else 1


def can_fork() -> bool:
    """Whether forking now leaves a sound child: Linux, and no thread but this one."""
    return sys.platform == "linux" and threading.active_count() == 1


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()
        limit = math.floor(int(quota) / int(period))
    except (OSError, ValueError):  # no cgroup v2 file, or "max": no quota
        return cpus
    return max(1, min(cpus, limit))


def child_share(only: Sequence[str] = (), skip: Sequence[str] = ()) -> frozenset[str]:
    """The components the child runs, of those --only/--skip leave in; none when fewer than
    two groups of components run."""
    groups: dict[str, set[str]] = {}
    weights: dict[str, float] = {}
    for component, module_name in chosen_components(only, skip).items():
        try:
            module: Any = importlib.import_module(module_name)
        except Exception:  # the registry reports it: a light check meanwhile
            module = None
        clients = getattr(module, "CLIENTS", ())
        key = clients[0] if clients else component
        groups.setdefault(key, set()).add(component)
        weights[key] = weights.get(key, 0.0) + getattr(module, "CPU_S", DEFAULT_CPU_S)
    if len(groups) < 2:
        return frozenset()
    loads = {"parent": VALUES_CPU_S, "child": 0.0}
    theirs: set[str] = set()
    for key in sorted(groups, key=lambda k: -weights[k]):
        side = "child" if loads["child"] <= loads["parent"] else "parent"
        loads[side] += weights[key]
        if side == "child":
            theirs |= groups[key]
    return frozenset(theirs)


class Child:
    """The forked process that runs the checks of `components`; their results (and a failure
    for each one it ends without reporting) arrive on `results`."""

    def __init__(self, pid: int, components: frozenset[str], pipes: tuple[int, int]) -> None:
        self.pid = pid
        self.components = components
        self.checks: tuple[Check, ...] = ()
        self.results: queue.Queue[tuple[str, CheckResult]] = queue.Queue()
        results, control = pipes
        self._control: BufferedWriter | None = os.fdopen(control, "wb")
        self._lock = threading.Lock()
        self._status: int | None = None
        self._relay = threading.Thread(
            target=self._relay_results, args=(results,), name="forked", daemon=True
        )
        self._relay.start()

    @classmethod
    def start(cls, components: frozenset[str], share: Share) -> Child:
        """Fork a child that imports the clients of `components`, then, once handed its
        checks, calls `share(ids, values, options, deadline, send)`; `send("done", check,
        result)` puts the result on `results` here."""
        results_read, results_write = os.pipe()
        control_read, control_write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()  # the child's collections leave the parent's objects (and pages) alone
        pid = os.fork()
        if pid == 0:
            os.close(results_read)
            os.close(control_write)
            _child_main(components, share, results_write, control_read)
        os.close(results_write)
        os.close(control_read)
        return cls(pid, components, (results_read, control_write))

    def hand_over(
        self, checks: Sequence[Check], values: Values, options: RunOptions, deadline: Deadline
    ) -> None:
        """Give the child its checks (of `components`), to run now under `options`, until
        `deadline`."""
        self.checks = tuple(checks)
        order: Order = ([check.id for check in checks], values, options, deadline)
        with self._lock, suppress(OSError):  # the child is gone: the relay reports it
            if self._control is not None:
                pickle.dump(order, self._control)
                self._control.flush()

    def stop(self) -> None:
        """Ask the child to stop: it runs its pending cleanups and exits."""
        with self._lock:
            if self._control is not None:
                with suppress(OSError):  # what it could not flush: the child is gone
                    self._control.close()
                self._control = None

    def wait(self, timeout_s: float) -> None:
        """Until the child has exited (its abandoned checks' cleanups done); killed past
        `timeout_s`."""
        self._relay.join(timeout_s)
        with self._lock:
            if self._status is None:
                os.kill(self.pid, signal.SIGKILL)
        self._relay.join()
        self.stop()

    def _relay_results(self, fd: int) -> None:
        """Put each result the child sends on `results`; when the pipe ends (the child
        exited), each check it did not report fails with how it ended."""
        reported: set[str] = set()
        with os.fdopen(fd, "rb") as pipe:
            while True:
                try:
                    check_id, result = pickle.load(pipe)
                except (EOFError, pickle.UnpicklingError):  # exited, or stopped mid-result
                    break
                reported.add(check_id)
                self.results.put((check_id, result))
        _, status = os.waitpid(self.pid, 0)
        with self._lock:
            self._status = status
        for check in self.checks:
            if check.id not in reported:
                self.results.put((check.id, _lost(check, status)))


def unreported(check: Check, timeout_s: float) -> CheckResult:
    """The failure of a check whose process, still running, sent no result by its deadline."""
    return _failed(check, timeout_message("waiting for the process running this check", timeout_s))


def _lost(check: Check, status: int) -> CheckResult:
    """The failure of a check whose process ended before sending its result."""
    code = os.waitstatus_to_exitcode(status)
    how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    return _failed(check, f"the process running this check ended without its result ({how})")


def _failed(check: Check, message: str) -> CheckResult:
    return CheckResult(
        check.id,
        check.title,
        Status.FAIL,
        message=message,
        remediation=f"run again; if it recurs, run with {ENV}=1 and report the result",
    )


def _child_main(
    components: frozenset[str], share: Share, results_fd: int, control_fd: int
) -> NoReturn:
    """The child: import its clients, wait for its checks, run them, sending each result;
    stop when the control pipe closes (before the checks came: at once, quietly)."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent says when to stop
        signal.signal(signal.SIGTERM, _interrupt)
        preload.start(sorted(components))
        order = _read_order(control_fd)
        if order is not None:
            threading.Thread(target=_stop_when_closed, args=(control_fd,), daemon=True).start()
            _run_share(share, order, results_fd)
        code = 0
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    finally:
        os._exit(code)  # never the parent's exit handlers, buffers or test harness


def _run_share(share: Share, order: Order, results_fd: int) -> None:
    """Run the share, each result pickled onto the results pipe as it comes."""
    with os.fdopen(results_fd, "wb") as pipe:

        def send(event: str, check: Check, result: CheckResult | None) -> None:
            if event == "done" and result is not None:
                with suppress(BrokenPipeError):  # the parent is gone: the watcher stops us
                    pickle.dump((check.id, result), pipe)
                    pipe.flush()

        share(*order, send)


def _read_order(control_fd: int) -> Order | None:
    """The parent's (check ids, values, options, deadline), or None when it closed the pipe
    first."""
    with os.fdopen(control_fd, "rb", closefd=False) as control:
        try:
            order: Order = pickle.load(control)
        except EOFError:
            return None
        return order


def _stop_when_closed(control_fd: int) -> None:
    """Block until the parent closes the control pipe (or dies), then stop this process."""
    with suppress(OSError):
        os.read(control_fd, 1)
    os.kill(os.getpid(), signal.SIGTERM)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt
