"""Executing the jobs with papermill, side by side, and the run's summary."""
from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping, Sequence

from .. import paths
from .jobs import Job, plan_jobs
from .kernel_start import start_kernel_and
from .profiles import (OUT_PARAMETER, REPORT_PARAMETER, RUNS_FOLDER, TIMEOUT_ERROR, default_notebooks_dir, load_grid,
                       load_profile, point_label)


def kernel_options(timeout: float | None) -> dict:
    """nbclient settings for papermill's kernels. The kernel manager provisions CurveZMQ keys where the kernel
    declares support (ipykernel ≥ 7), so the kernel no longer warns "Kernel is running over TCP without
    encryption" on stderr. With a cell ``timeout`` the kernel is interrupted when a cell runs over it, so that the
    cell ends in an error (KeyboardInterrupt) before the kernel is shut down, instead of a kernel that is shut down
    while still running and prints a ZMQError traceback."""
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    options: dict = {}
    if zmq.has("curve") and KernelManager.class_traits().get("transport_encryption") is not None:
        options["config"] = Config({"KernelManager": {"transport_encryption": "auto"}})
    if timeout is not None:
        options.update(interrupt_on_timeout=True, error_on_timeout={
            "ename": TIMEOUT_ERROR, "evalue": f"the cell ran longer than {timeout:g} s", "traceback": []})
    return options


def _quiet_papermill_log() -> None:
    """nbclient logs a cell timeout ("Timeout waiting for execute reply", "Interrupting kernel") and a kernel that did
    not start through papermill's logger; the runner reports both on one line itself."""
    import logging

    class ReportedByTheRunner(logging.Filter):
        def filter(self, record):
            return not str(record.msg).startswith(("Timeout waiting for execute reply", "Interrupting kernel",
                                                    "Error occurred while starting new kernel client"))

    log = logging.getLogger("papermill")
    if not any(isinstance(f, ReportedByTheRunner) for f in log.filters):
        log.addFilter(ReportedByTheRunner())


def _timed_out(job: Job, timeout: float, cell_index, exec_count, source: str) -> dict:
    where = f"cell {exec_count} (index {cell_index})" if cell_index is not None else "a cell"
    text = f": {source}" if source else ""
    return {"status": "failed", "timed_out": True, "ename": TIMEOUT_ERROR, "evalue": f"longer than {timeout:g} s",
            "cell_index": cell_index, "exec_count": exec_count, "cell_source": source,
            "error": f"{job.notebook.stem}: {where} timed out after {timeout:g} s (run --timeout){text}"}


def execute_job(job: Job, *, kernel_name: str = "python3", cwd=None, timeout: float | None = None,
                progress: bool = True, bar_position: int | None = None) -> dict:
    """Run one notebook with papermill into ``job.out_dir``; returns its summary entry (never raises for a
    failing notebook: the failing cell and the error are recorded). ``progress``: a bar over its cells (stderr).
    A cell that runs longer than ``timeout`` seconds is interrupted and recorded as ``timed_out`` with a one-line
    error naming the notebook and the cell. A kernel that never answers is started again (up to
    :data:`~.kernel_start.KERNEL_START_ATTEMPTS` times, one kernel start at a time on this machine:
    :mod:`.kernel_start`)."""
    import papermill
    from nbclient.exceptions import CellTimeoutError
    from papermill.exceptions import PapermillExecutionError

    job.out_dir.mkdir(parents=True, exist_ok=True)
    output = job.out_dir / job.notebook.name
    entry = {"notebook": job.notebook.stem, "key": job.key, "point": point_label(job.point) if job.point else "",
             "parameters": job.parameters, "out_dir": str(job.out_dir), "output_notebook": str(output),
             "status": "ok", "error": None}
    started = time.perf_counter()
    try:
        start_kernel_and(lambda kernel_answered: papermill.execute_notebook(
            str(job.notebook), str(output), parameters=job.parameters, kernel_name=kernel_name,
            cwd=str(cwd or job.notebook.parent),
            progress_bar={"desc": job.notebook.stem, "leave": False, "position": bar_position} if progress else False,
            log_output=False, execution_timeout=timeout, on_notebook_start=kernel_answered, **kernel_options(timeout)),
            what=job.title)
    except PapermillExecutionError as error:
        source = (error.source or "").strip().splitlines()
        first = source[0] if source else ""
        if timeout is not None and error.ename in (TIMEOUT_ERROR, "KeyboardInterrupt"):
            entry.update(_timed_out(job, timeout, error.cell_index, error.exec_count, first))
        else:
            entry.update(status="failed", cell_index=error.cell_index, exec_count=error.exec_count,
                         ename=error.ename, evalue=error.evalue, cell_source=first,
                         error=f"cell {error.exec_count} (index {error.cell_index}): {error.ename}: {error.evalue}")
    except CellTimeoutError as error:   # the kernel did not answer the interrupt in time
        entry.update(_timed_out(job, timeout or 0, *_running_cell(output)), evalue=_one_line(error))
    except Exception as error:  # kernel death, missing kernels: still report, keep going
        entry.update(status="failed", ename=type(error).__name__, evalue=str(error),
                     error=f"{type(error).__name__}: {_one_line(error)}",
                     traceback=traceback.format_exc(limit=3))
    entry["duration_s"] = round(time.perf_counter() - started, 1)
    return entry


def _one_line(error: BaseException) -> str:
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


def _running_cell(output: Path) -> tuple:
    """(index, execution count, first source line) of the last cell papermill started in a partly executed
    notebook; (None, None, "") when it cannot tell."""
    try:
        import nbformat
        cells = nbformat.read(output, as_version=4).cells
    except Exception:   # not written (yet), or unreadable: the cell stays unnamed
        return None, None, ""
    started = [i for i, cell in enumerate(cells) if cell.get("metadata", {}).get("papermill", {}).get("start_time")]
    if not started:
        return None, None, ""
    cell = cells[started[-1]]
    return started[-1], cell.get("execution_count"), (cell.source.strip().splitlines() or [""])[0]


def _markdown_summary(summary: Mapping) -> str:
    lines = [f"# Run `{Path(summary['run_dir']).name}`", "",
             f"- profile: `{summary['profile']}` ({summary.get('description') or 'no description'})",
             f"- grid: `{summary.get('grid') or 'none'}`",
             f"- started {summary['started']}, finished {summary.get('finished') or '(running)'}, "
             f"{summary.get('duration_s', 0) / 60:.1f} min",
             f"- status: **{summary.get('status', 'running')}** "
             f"({sum(e['status'] == 'ok' for e in summary['entries'])} of {len(summary['entries'])} notebooks ok)",
             *([f"- training runs: {summary['prepared_runs']} prepared before the notebooks (`semscale train-runs`), "
                f"{len(summary.get('trained_by_notebooks') or [])} trained by them"] if summary.get("prepared_runs")
               else []),
             "", "| notebook | grid point | status | seconds | parameters | error |", "|---|---|---|---|---|---|"]
    for entry in summary["entries"]:
        params = ", ".join(f"{k}={json.dumps(v)}" for k, v in entry["parameters"].items()
                           if k not in (OUT_PARAMETER, REPORT_PARAMETER))
        error = (entry.get("error") or "").replace("|", "\\|").replace("\n", " ")[:300]
        lines.append(f"| {entry['notebook']} | {entry['point']} | {entry['status']} | {entry['duration_s']} | "
                     f"{params.replace('|', '/')} | {error} |")
    return "\n".join(lines) + "\n"


def finished_runs(runs_dir: Path) -> set[str]:
    """Names of the finished training runs (their final per-class table written) in a shared runs folder."""
    from ..studies.plans import FINISHED_FILE
    return {p.parent.name for p in Path(runs_dir).glob(f"*/{FINISHED_FILE}")}


def write_summary(run_dir, summary: Mapping) -> tuple[Path, Path]:
    """``summary.json`` and ``summary.md`` in ``run_dir``."""
    run_dir = Path(run_dir)
    json_path, md_path = run_dir / "summary.json", run_dir / "summary.md"
    json_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    md_path.write_text(_markdown_summary(summary))
    return json_path, md_path


def format_duration(seconds: float) -> str:
    """``42 s``, ``12 min 3 s``, ``2 h 5 min``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def new_run_dir(profile_name: str, out=None, *, force: bool = False) -> Path:
    """``out`` if given (new, empty or holding only the training runs ``semscale train-runs`` put there, unless
    ``force``: :func:`semscale_lib.paths.claim_output_dir`), else
    ``<runs_root>/<profile>-<YYYYmmdd-HHMMSS>`` (suffixed if it exists)."""
    if out is not None:
        prepared = Path(out).is_dir() and {p.name for p in Path(out).iterdir()} <= {RUNS_FOLDER}
        return paths.claim_output_dir(out, force=force or prepared, what="run folder")
    base = paths.runs_root() / f"{profile_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path

def kernel_threads(jobs: int, cpus: int | None = None) -> int:
    """CPU threads per kernel when ``jobs`` notebooks run side by side: the cores shared out, at least 1. Two
    kernels that each spin up every core's worth of OpenMP threads slow each other down many times over."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus // max(1, jobs))


def share_resources(jobs: Sequence[Job], workers: int, stream, *, gpus: int | None = None) -> None:
    """With ``workers`` > 1, each job's threads and device as its own parameters (this process's environment is
    never changed): a notebook whose ``threads`` is None (from the profile, or its own default) gets the cores
    shared out (:func:`kernel_threads`); with several visible GPUs, one whose ``device`` is "auto" gets cuda:0,
    cuda:1, … in turn. Warns when a notebook's own threads × workers exceed the cores."""
    if workers <= 1:
        return
    per_kernel, cpus = kernel_threads(workers), os.cpu_count() or 1
    if gpus is None:
        from .train_runs import visible_gpus
        gpus = visible_gpus()
    crowded = set()
    for number, job in enumerate(jobs):
        threads = job.parameters.get("threads", job.defaults.get("threads", "absent"))
        if threads is None and "threads" in job.defaults:
            job.parameters["threads"] = per_kernel
        elif isinstance(threads, int) and threads * workers > cpus:
            crowded.add(job.notebook.stem)
        if gpus > 1 and "device" in job.defaults and job.parameters.get("device", job.defaults["device"]) == "auto":
            job.parameters["device"] = f"cuda:{number % gpus}"
    if crowded:
        print(f"warning: the threads of {', '.join(sorted(crowded))} × {workers} notebooks at once exceed the {cpus} "
              f"cores; set threads: {per_kernel} (or fewer --jobs)", file=stream, flush=True)


def run(profile, *, grid=None, only: Sequence[str] | None = None, out=None, notebooks_dir=None,
        profiles_dir=None, report: bool = True, kernel_name: str = "python3", timeout: float | None = None,
        stream=None, force: bool = False, progress: bool = True, jobs: int = 1) -> tuple[int, Path]:
    """Execute a profile (name, path or loaded dict); returns (exit code: 0 all ok / 1 any failed, run folder).

    ``jobs``: how many notebooks run side by side (report notebooks still run last, alone); see
    :func:`kernel_threads` for the CPU threads each kernel then gets.

    The jobs are planned (and every name checked) before the run folder is made. Prints ``[i/n] notebook (grid
    point)`` before each notebook, a bar over its cells (stderr, unless not ``progress``), its status and time,
    and last ``<n> notebooks, <k> failed, <time>; report: <path>``.
    """
    stream = stream or sys.stdout
    _quiet_papermill_log()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs (notebooks side by side) must be a whole number ≥ 1, got {jobs!r}")
    profile = profile if isinstance(profile, Mapping) else load_profile(profile, profiles_dir)
    grid = grid if (grid is None or isinstance(grid, Mapping)) else load_grid(grid)
    grid = grid if grid is not None else profile.get("grid")   # a --grid file replaces the profile's own grid
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
    # every name is checked before the run folder is made: a typo leaves nothing behind
    plan_jobs(profile, Path(out or "."), notebooks_dir=notebooks_dir, grid=grid, only=only, report=report)
    run_dir = new_run_dir(profile["name"], out, force=force).resolve()
    workers, jobs = jobs, plan_jobs(profile, run_dir, notebooks_dir=notebooks_dir, grid=grid, only=only,
                                    report=report)
    workers = max(1, min(workers, sum(not j.report for j in jobs)))
    summary = {"profile": profile["name"], "profile_file": profile.get("path"),
               "description": profile.get("description", ""), "grid": (grid or {}).get("path"),
               "grid_values": (grid or {}).get("points") or (grid or {}).get("values"), "run_dir": str(run_dir),
               "notebooks_dir": str(notebooks_dir), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
               "entries": []}
    print(f"run folder: {run_dir} ({len(jobs)} notebook runs, profile {profile['name']}"
          + (f", {workers} side by side" if workers > 1 else "") + ")", file=stream, flush=True)
    started = time.perf_counter()
    prepared = finished_runs(run_dir / RUNS_FOLDER)      # what `semscale train-runs` trained before the notebooks
    summary["prepared_runs"] = len(prepared)
    write_summary(run_dir, summary)
    entries: dict[int, dict] = {}
    lock = threading.Lock()

    def finished(number: int, job: Job, entry: dict) -> None:
        with lock:
            entries[number] = entry
            summary["entries"] = [entries[n] for n in sorted(entries)]   # in plan order, whatever ended first
            summary["duration_s"] = round(time.perf_counter() - started, 1)
            write_summary(run_dir, summary)  # after each notebook, so the report notebook sees what ran
            name = f"{job.title}: " if workers > 1 else ""
            print(f"    {name}{entry['status']} in {format_duration(entry['duration_s'])}"
                  + (f": {entry['error']}" if entry["error"] else ""), file=stream, flush=True)

    numbered = list(enumerate(jobs, 1))
    regular = [(n, j) for n, j in numbered if not j.report]
    share_resources([j for _, j in regular], workers, stream)
    if workers == 1:
        for number, job in regular:
            print(f"[{number}/{len(jobs)}] {job.title}", file=stream, flush=True)
            finished(number, job, execute_job(job, kernel_name=kernel_name, cwd=notebooks_dir,
                                              timeout=timeout, progress=progress))
    else:
        slots = queue.Queue()
        for slot in range(workers):
            slots.put(slot)

        def one(number: int, job: Job) -> None:
            slot = slots.get()
            try:
                with lock:
                    print(f"[{number}/{len(jobs)}] {job.title} (started)", file=stream, flush=True)
                entry = execute_job(job, kernel_name=kernel_name, cwd=notebooks_dir, timeout=timeout,
                                    progress=progress, bar_position=slot)
            finally:
                slots.put(slot)
            finished(number, job, entry)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(one, n, j) for n, j in regular]:
                future.result()
    for number, job in numbered:                     # report notebooks last, once every other one has ended
        if job.report:
            print(f"[{number}/{len(jobs)}] {job.title}", file=stream, flush=True)
            finished(number, job, execute_job(job, kernel_name=kernel_name, cwd=notebooks_dir, timeout=timeout,
                                              progress=progress))
    failed = [e for e in summary["entries"] if e["status"] != "ok"]
    summary["trained_by_notebooks"] = sorted(finished_runs(run_dir / RUNS_FOLDER) - prepared)
    summary.update(finished=time.strftime("%Y-%m-%d %H:%M:%S"), duration_s=round(time.perf_counter() - started, 1),
                   status="failed" if failed else "ok", failures=[f"{e['notebook']} {e['point']}: {e['error']}"
                                                                  for e in failed])
    _, md_path = write_summary(run_dir, summary)
    print(f"summary: {md_path}" + (f" ({len(failed)} of {len(jobs)} failed)" if failed else ""), file=stream)
    if prepared:
        print(f"training runs: {len(prepared)} prepared before the notebooks, "
              f"{len(summary['trained_by_notebooks'])} trained by them", file=stream)
    report_path = run_dir / "report.md"
    print(f"{len(jobs)} notebook{'s' if len(jobs) != 1 else ''}, {len(failed)} failed, "
          f"{format_duration(summary['duration_s'])}; "
          + (f"report: {report_path}" if report_path.exists() else f"report: none written (see {md_path})"),
          file=stream, flush=True)
    return (1 if failed else 0), run_dir
