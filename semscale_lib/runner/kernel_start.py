"""Starting Jupyter kernels side by side, in several processes at once, without losing a notebook to a kernel that
never answered.

jupyter_client picks a kernel's TCP ports by binding port 0 and letting the port go again before the kernel binds
it. Within one process it remembers the ports it handed out; two processes starting kernels at the same moment (the
notebooks under pytest-xdist, two ``semscale run`` at once) can be handed the same port, and one kernel then dies or
never answers ("Kernel died before replying to kernel_info", "Kernel didn't respond in 60 seconds"). So every
kernel start on this machine takes a lock shared by all of this user's processes and keeps it until its kernel has
answered (a second or two), and a kernel that did not start is started again, up to :data:`KERNEL_START_ATTEMPTS`
times. Only starting is retried: a kernel that started and then failed a cell is the notebook's failure.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, TypeVar

try:
    import fcntl   # POSIX; elsewhere kernel starts are only retried, not serialised
except ImportError:  # pragma: no cover
    fcntl = None

#: how many times one notebook's kernel is started before its failure to start is reported
KERNEL_START_ATTEMPTS = 3

#: how jupyter_client (and nbval) report a kernel that never answered its first request
_NOT_STARTED = ("Kernel died before replying to kernel_info", "Kernel didn't respond in",
                "Kernel info reqest timed out", "Wasn't able to establish IOPub")

T = TypeVar("T")


def did_not_start(error: BaseException) -> bool:
    """True when ``error`` says a kernel never answered its first request (as opposed to a failing cell)."""
    return isinstance(error, RuntimeError) and str(error).startswith(_NOT_STARTED)


def default_lock_path() -> Path:
    """The lock file every kernel start of this user on this machine shares (in the temporary folder)."""
    user = os.getuid() if hasattr(os, "getuid") else "user"    # where there is no uid there is no lock either
    return Path(tempfile.gettempdir()) / f"semscale-kernel-start-{user}.lock"


class KernelStartLock:
    """Held from before a kernel is started until it has answered: ``with KernelStartLock() as lock: ...``, and
    ``lock.release()`` as soon as the kernel answered (it also takes nbclient's ``on_notebook_start`` hook
    arguments). Releasing twice is harmless; leaving the ``with`` block releases it in any case."""

    def __init__(self, path=None):
        self.path = Path(path) if path is not None else default_lock_path()
        self._file = None

    def __enter__(self) -> "KernelStartLock":
        if fcntl is not None:
            try:
                self._file = open(self.path, "a")
            except OSError:       # no writable temporary folder: kernels still start, only not one at a time
                return self
            fcntl.flock(self._file, fcntl.LOCK_EX)
        return self

    def release(self, **_hook_arguments) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def __exit__(self, *exc) -> None:
        self.release()


def start_kernel_and(execute: Callable[[Callable[..., None]], T], *, what: str = "a notebook",
                     attempts: int = KERNEL_START_ATTEMPTS, lock_path=None, stream=None) -> T:
    """``execute(kernel_answered)`` under the kernel-start lock, retried while its kernel did not start.

    ``execute`` starts one kernel and calls ``kernel_answered()`` (any keyword arguments) once the kernel has
    answered, which lets the next kernel start; it returns what ``execute`` returns. A failure to start is retried
    up to ``attempts`` times in all, with a line on ``stream`` (default stderr) each time; any other error, or the
    last failure to start, is raised as it came.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be ≥ 1, got {attempts!r}")
    for attempt in range(1, attempts + 1):
        with KernelStartLock(lock_path) as lock:
            try:
                return execute(lock.release)
            except Exception as error:
                if attempt == attempts or not did_not_start(error):
                    raise
                reason = " ".join(str(error).split())
        print(f"{what}: its kernel did not start ({reason}); starting it again ({attempt + 1} of {attempts})",
              file=stream or sys.stderr, flush=True)
    raise AssertionError("unreachable")   # pragma: no cover
