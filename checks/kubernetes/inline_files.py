"""Where the kubernetes client writes a kubeconfig's inline data out for urllib3, which takes
files: `certificate-authority-data`, `client-certificate-data`, `client-key-data`, an exec
plugin's client certificate.

The client caches those files process-wide, each under its content, and removes them in an
atexit hook, which a run never reaches: it leaves through os._exit. So every run left the
cluster's CA, and a client key where there was one, in the temporary folder. The cache is not
thread-safe either: it names a file before writing it, and a second check loading the same
kubeconfig at that moment was given the empty file ("cannot load CA bundle"). So the loads
take turns (and so do the client's token refreshes, which run an exec plugin again and write
its certificate), and the files go to a private folder, removed when the last check that
loaded into it has ended.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from preflight.engine.check import Probe, StepFailed

#: How long the last check to give the folder back waits for a load still writing into it: an
#: abandoned check's, whose exec plugin its cleanup has stopped just before.
WRITER_WAIT_S = 2.0


class InlineFiles:
    """The folder for one process's inline kubeconfig files, and the turn to load into it."""

    def __init__(self) -> None:
        self._turn = threading.Lock()  # the client's cache: one load at a time
        self._state = threading.Lock()  # guards _users and _folder; never held while waiting
        self._users = 0
        self._folder: str | None = None

    @contextmanager
    def loading(self, probe: Probe) -> Iterator[str]:
        """Wait for the turn to load a kubeconfig and yield the folder to write into. The
        probe's cleanup gives the folder back; the last check to give it back removes it.
        Enter it before anything whose cleanup must run first (stopping an exec plugin):
        cleanups run newest first."""
        with self._state:
            if self._folder is None:
                self._folder = tempfile.mkdtemp(prefix="sense-preflight-kube-")
            self._users += 1
            folder = self._folder
        returned = threading.Event()

        def give_back() -> None:
            returned.set()
            with self._state:
                self._users -= 1
            self._remove_if_unused(wait_s=WRITER_WAIT_S)

        probe.cleanup("remove the kubeconfig's certificate and key files", give_back)
        with self.writing():
            if returned.is_set():  # abandoned while another check loaded: write nothing
                raise StepFailed("abandoned at the deadline while another check loaded")
            yield folder

    @contextmanager
    def writing(self) -> Iterator[None]:
        """The turn to write into the folder: a load's, or the client's refresh of a token
        it loaded (which writes an exec plugin's certificate there again)."""
        try:
            with self._turn:
                yield
        finally:  # a writer that outlived WRITER_WAIT_S removes what it wrote when it ends
            self._remove_if_unused(wait_s=0)

    def _remove_if_unused(self, wait_s: float) -> None:
        """Remove the folder once no check uses it, waiting up to `wait_s` for the turn: a
        load that still holds it may write into the folder."""
        with self._state:
            if self._users or self._folder is None:
                return
        if not self._turn.acquire(timeout=wait_s):
            return
        try:
            with self._state:
                if self._users == 0 and self._folder is not None:
                    shutil.rmtree(self._folder, ignore_errors=True)
                    self._folder = None
        finally:
            self._turn.release()


#: This process's inline kubeconfig files (a forked child starts with none loaded).
INLINE_FILES = InlineFiles()
