"""Kernel starts: one at a time on the machine, and started again when the kernel never answered (the runner's
papermill kernels and nbval's, through notebooks/conftest.py)."""
from __future__ import annotations

import fcntl
import io
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from xml.etree import ElementTree

import nbformat
import pytest

from semscale_lib import runner
from semscale_lib.runner.kernel_start import (KERNEL_START_ATTEMPTS, KernelStartLock, did_not_start,
                                              start_kernel_and)

REPO = Path(__file__).resolve().parents[2]
DIED = "Kernel died before replying to kernel_info"


def _lock_is_free(path) -> bool:
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
        return True


# ----------------------------------------------------------------------------------------------- the retry rule
@pytest.mark.parametrize("message, expected", [
    (DIED, True), ("Kernel didn't respond in 60 seconds", True), ("Kernel info reqest timed out after 10 seconds!", True),
    ("Wasn't able to establish IOPub after 30 seconds.", True), ("boom in cell three", False)])
def test_only_a_kernel_that_never_answered_counts_as_not_started(message, expected):
    assert did_not_start(RuntimeError(message)) is expected
    assert did_not_start(ValueError(message)) is False


def test_a_kernel_that_did_not_start_is_started_again_with_a_line_each_time(tmp_path):
    calls, stream = [], io.StringIO()

    def execute(kernel_answered):
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError(DIED)
        kernel_answered(notebook=None)          # nbclient's on_notebook_start passes the notebook
        return "ran"

    assert start_kernel_and(execute, what="01_x", lock_path=tmp_path / "lock", stream=stream) == "ran"
    assert len(calls) == 3
    assert stream.getvalue().splitlines() == [
        f"01_x: its kernel did not start ({DIED}); starting it again (2 of {KERNEL_START_ATTEMPTS})",
        f"01_x: its kernel did not start ({DIED}); starting it again (3 of {KERNEL_START_ATTEMPTS})"]


def test_the_last_failure_to_start_and_any_other_error_are_raised_as_they_came(tmp_path):
    calls = []

    def never_starts(kernel_answered):
        calls.append(1)
        raise RuntimeError(DIED)

    with pytest.raises(RuntimeError, match="Kernel died"):
        start_kernel_and(never_starts, attempts=2, lock_path=tmp_path / "lock", stream=io.StringIO())
    assert len(calls) == 2

    def fails_a_cell(kernel_answered):
        calls.append(1)
        raise RuntimeError("boom")

    calls.clear()
    with pytest.raises(RuntimeError, match="boom"):
        start_kernel_and(fails_a_cell, lock_path=tmp_path / "lock")
    assert len(calls) == 1
    with pytest.raises(ValueError, match="attempts"):
        start_kernel_and(fails_a_cell, attempts=0)


def test_the_lock_is_held_until_the_kernel_answered_then_released(tmp_path):
    lock_path = tmp_path / "lock"
    seen = []

    def execute(kernel_answered):
        seen.append(_lock_is_free(lock_path))     # another process would wait here
        kernel_answered()
        seen.append(_lock_is_free(lock_path))     # and may start its kernel from here on
        kernel_answered()                         # twice is harmless
        return None

    start_kernel_and(execute, lock_path=lock_path)
    assert seen == [False, True] and _lock_is_free(lock_path)
    with KernelStartLock(lock_path) as lock:
        assert lock.held and not _lock_is_free(lock_path)
    assert not lock.held and _lock_is_free(lock_path)


def test_a_lock_file_that_cannot_be_made_only_loses_the_one_at_a_time(tmp_path):
    lock_path = tmp_path / "no such folder" / "lock"
    with KernelStartLock(lock_path) as lock:
        assert not lock.held
    assert start_kernel_and(lambda kernel_answered: kernel_answered() or "ran", lock_path=lock_path) == "ran"


def test_a_second_process_waits_for_the_lock(tmp_path):
    lock_path, order = tmp_path / "lock", tmp_path / "order"
    waiter = textwrap.dedent(f"""
        from semscale_lib.runner.kernel_start import KernelStartLock
        with open({str(order)!r}, "a") as fh:
            fh.write("waiting\\n")
        with KernelStartLock({str(lock_path)!r}):
            with open({str(order)!r}, "a") as fh:
                fh.write("child has it\\n")
    """)
    with KernelStartLock(lock_path):
        child = subprocess.Popen([sys.executable, "-c", waiter], cwd=REPO)
        for _ in range(1200):                     # until the child asks for the lock
            if order.exists() and "waiting" in order.read_text():
                break
            time.sleep(0.05)
        time.sleep(0.5)                           # time enough for a child that did not wait to say so
        with open(order, "a") as fh:
            fh.write("parent lets go\n")
    assert child.wait(timeout=60) == 0
    assert order.read_text().splitlines() == ["waiting", "parent lets go", "child has it"]


# ------------------------------------------------------------------------------------ real kernels that fail to start
@pytest.fixture
def flaky_kernel(tmp_path, monkeypatch):
    """A kernelspec "flaky" (on JUPYTER_PATH) whose process exits at once for its first ``fails`` launches, then runs
    ipykernel; returns (set the number of failing launches, read the number of launches)."""
    home = tmp_path / "jupyter"
    spec_dir = home / "kernels" / "flaky"
    spec_dir.mkdir(parents=True)
    launches, fails = tmp_path / "launches", tmp_path / "fails"
    (spec_dir / "launch.py").write_text(textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        launches = Path({str(launches)!r})
        done = len(launches.read_text()) if launches.exists() else 0
        launches.write_text("x" * (done + 1))
        if done < int(Path({str(fails)!r}).read_text()):
            sys.exit(3)
        os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", sys.argv[1]])
    """))
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, str(spec_dir / "launch.py"), "{connection_file}"],
        "display_name": "flaky", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(home))

    def set_fails(n: int) -> None:
        fails.write_text(str(n))
        launches.unlink(missing_ok=True)

    return set_fails, lambda: len(launches.read_text()) if launches.exists() else 0


def _notebook(path, kernel: str, source: str, output: str | None = None) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    cell = nbformat.v4.new_code_cell(source, execution_count=1, metadata={"tags": ["nbval-check-output"]})
    if output is not None:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
    nb.cells = [nbformat.v4.new_code_cell('out_dir = "out"', metadata={"tags": ["parameters"]}), cell]
    nbformat.write(nb, path)


def test_the_runner_starts_a_kernel_that_died_at_start_again(flaky_kernel, tmp_path, caplog, capfd):
    set_fails, launches = flaky_kernel
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "01_prints.ipynb", "flaky", "print(6 * 7)")
    set_fails(KERNEL_START_ATTEMPTS - 1)
    code, run_dir = runner.run({"name": "flaky", "notebooks": None}, notebooks_dir=folder, out=tmp_path / "ok",
                               kernel_name="flaky", stream=io.StringIO(), progress=False)
    assert code == 0 and launches() == KERNEL_START_ATTEMPTS
    executed = nbformat.read(run_dir / "01_prints" / "01_prints.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0]["text"] == "42\n"
    # the console gets the runner's line per retry, not nbclient's log of each failed start
    assert capfd.readouterr().err.count("01_prints: its kernel did not start") == KERNEL_START_ATTEMPTS - 1
    assert not [r for r in caplog.records if "starting new kernel client" in r.getMessage()]

    set_fails(KERNEL_START_ATTEMPTS)                 # never starts: reported, once, after the last attempt
    code, run_dir = runner.run({"name": "flaky", "notebooks": None}, notebooks_dir=folder, out=tmp_path / "never",
                               kernel_name="flaky", stream=io.StringIO(), progress=False)
    entry = json.loads((run_dir / "summary.json").read_text())["entries"][0]
    assert code == 1 and launches() == KERNEL_START_ATTEMPTS
    assert entry["status"] == "failed" and entry["error"] == f"RuntimeError: {DIED}"


@pytest.mark.slow
def test_nbval_starts_a_kernel_that_died_at_start_again(flaky_kernel, tmp_path):
    set_fails, launches = flaky_kernel
    shutil.copy(REPO / "notebooks" / "conftest.py", tmp_path / "conftest.py")
    _notebook(tmp_path / "prints.ipynb", "flaky", "print(6 * 7)", output="42\n")
    _notebook(tmp_path / "moved.ipynb", "flaky", "print(6 * 7)", output="41\n")
    set_fails(1)
    report = tmp_path / "report.xml"
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-q", "-s", f"--junitxml={report}", "--rootdir", str(tmp_path),
                           str(tmp_path / "prints.ipynb"), str(tmp_path / "moved.ipynb")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    cases = {case.get("classname", "") + case.get("name", ""): case
             for case in ElementTree.parse(report).getroot().iter("testcase")}
    outcome = {name: [("failure" if case.find("failure") is not None else
                       "error" if case.find("error") is not None else "passed")
                      for key, case in cases.items() if name in key] for name in ("prints", "moved")}
    # the first kernel died at start and was started again; the second started at once
    assert outcome == {"prints": ["passed", "passed"], "moved": ["passed", "failure"]}, done.stdout[-3000:]
    assert launches() == 3
    assert "nbval: its kernel did not start (Kernel died before replying to kernel_info)" in done.stderr
