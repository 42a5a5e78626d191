"""``semscale train-runs``: train every run a profile's plan (:mod:`.plan`) names, before its notebooks run, so that
they find every run finished and only read and measure.

Executors:

- ``local``: worker processes on this machine, each with its own device and CPU threads (a *slot*): on every
  visible GPU ``runs_per_gpu`` runs side by side (small models leave a large GPU mostly idle), or on the CPU
  ``workers`` runs of ``threads`` threads each. A worker is one long-lived process per slot (torch and the device
  set up once); its device and threads are arguments, nothing in this process's environment changes. What a run
  prints (warnings, the traceback of a failure) goes to ``<runs folder>/<run folder>.log``.
- ``submitit-local``: the same runs as jobs of submitit's local executor (one process per job; what a cluster job
  runs, without a cluster).
- ``slurm``: one Slurm job per run through submitit (partition, time limit and GPUs per job as options).

Runs are trained in waves: after each wave the plan is made again, so runs named from others' results (notebook
03's 1/S weights) are trained in the next. Killed and started again with the same command, it reuses the finished
runs, resumes the interrupted ones (their last checkpoint) and trains nothing twice; two commands on one runs folder
take turns on each run's lock.
"""
from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import shutil
import sys
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue
from typing import Mapping, Sequence

from tqdm.auto import tqdm

from .execute import format_duration
from .plan import RunPlan, plan_runs, print_plan

EXECUTORS = ("local", "submitit-local", "slurm")
MAX_WAVES = 5            # runs named from other runs' results nest this deep at most (today: 2)
LOG_SUFFIX = ".log"      # <runs folder>/<run folder>.log: what the run's worker printed


@dataclass(frozen=True)
class Slot:
    """Where one worker trains: a device ("cpu", "cuda:N") and its CPU threads."""
    device: str
    threads: int


def visible_gpus() -> int:
    """CUDA devices this process can see (0 without CUDA)."""
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def local_slots(*, gpus: int | None = None, runs_per_gpu: int = 4, workers: int | None = None,
                threads: int | None = None, visible: int | None = None, cpus: int | None = None) -> list[Slot]:
    """The slots of the local executor. ``gpus`` (default: every visible one) × ``runs_per_gpu`` slots on
    cuda:0…, the cores shared out among them; with no GPU (or ``gpus=0``), ``workers`` CPU slots (default: cores /
    ``threads``) of ``threads`` threads (default 1: the same numbers as the notebooks' default). Raises ValueError
    for more GPUs than are visible and for counts below 1."""
    visible = visible_gpus() if visible is None else visible
    cpus = cpus or os.cpu_count() or 1
    for name, value in (("runs per GPU", runs_per_gpu), ("workers", workers), ("threads", threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a whole number ≥ 1, got {value!r}")
    if gpus is not None and (isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0):
        raise ValueError(f"gpus must be a whole number ≥ 0, got {gpus!r}")
    if gpus is not None and gpus > visible:
        raise ValueError(f"{gpus} GPU(s) asked for, {visible} visible (CUDA_VISIBLE_DEVICES and the driver decide "
                         "which); ask for at most that many")
    count = visible if gpus is None else gpus
    if count:
        per_run = threads or max(1, cpus // (count * runs_per_gpu))
        return [Slot(f"cuda:{gpu}", per_run) for _ in range(runs_per_gpu) for gpu in range(count)]
    per_run = threads or 1
    return [Slot("cpu", per_run) for _ in range(workers or max(1, cpus // per_run))]


def run_spec(config, folder: Path, slot: Slot) -> dict:
    """What a worker needs to train one run: its settings (flat, as config.json holds them), folder and slot."""
    return {"config": config.to_dict(), "folder": str(folder), "device": slot.device, "threads": slot.threads}


def train_spec(spec: Mapping) -> dict:
    """Train one run of :func:`run_spec` in this process (a local worker or a submitit job): reused when finished,
    resumed when interrupted (:func:`~semscale_lib.training.reuse.train_or_reuse`). The device and thread count
    do not change the run's settings key. Returns {folder, seconds}."""
    import torch

    from ..training import make_config
    from ..training.reuse import train_or_reuse
    torch.set_num_threads(int(spec["threads"]))
    config = make_config(**{**spec["config"], "device": spec["device"]})
    started = time.perf_counter()
    folder = train_or_reuse(config, Path(spec["folder"]), progress=False)
    return {"folder": str(folder), "seconds": round(time.perf_counter() - started, 1)}


def _check_executor(executor: str) -> None:
    """Mistakes in the executor end in one line before anything starts."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; valid: {', '.join(EXECUTORS)}")
    if executor == "local":
        return
    import importlib.util
    if importlib.util.find_spec("submitit") is None:
        raise ValueError(f"--executor {executor} needs submitit, which is not installed: pip install submitit "
                         "(or pip install -e '.[cluster]')")
    if executor == "slurm" and shutil.which("sbatch") is None:
        raise ValueError("--executor slurm needs Slurm's sbatch on PATH, and there is none on this machine: run "
                         "it on the cluster's login node, or use --executor local")


def _train_logged(spec: Mapping, log: str) -> str | None:
    """:func:`train_spec`, with what the run prints (warnings, a traceback) appended to ``log`` when it prints
    anything; a failure as one line (the worker lives on for the next run)."""
    printed, failure = io.StringIO(), None
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            train_spec(spec)
        except Exception as error:   # recorded in the run's log and reported; the other runs go on
            traceback.print_exc()
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            failure = f"{type(error).__name__}: {first}"
    if printed.getvalue():
        with open(log, "a") as out:
            out.write(printed.getvalue())
    return failure


class _Worker:
    """One long-lived process per slot (torch imported and the device set up once, not once per run)."""

    def __init__(self, slot: Slot):
        self.slot, self.pool = slot, None

    def run(self, spec: dict, log: Path) -> str | None:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return self.pool.submit(_train_logged, {**spec, "device": self.slot.device,
                                                    "threads": self.slot.threads}, str(log)).result()
        except BrokenProcessPool:     # the worker died (killed, out of memory): the next run gets a new one
            self.pool = None
            return f"its worker process died (see {log})"

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def _local_wave(specs: list[dict], workers: list[_Worker], logs: Path, bar) -> list[str]:
    """Each spec on the next free worker; returns the failures (one line each)."""
    todo: Queue = Queue()
    for spec in specs:
        todo.put(spec)
    failures, lock = [], threading.Lock()

    def drain(worker: _Worker) -> None:
        while True:
            try:
                spec = todo.get_nowait()
            except Empty:
                return
            log = logs / (Path(spec["folder"]).name + LOG_SUFFIX)
            failed = worker.run(spec, log)
            with lock:
                if failed:
                    failures.append(f"{Path(spec['folder']).name}: {failed} (log: {log})")
                bar.update(1)

    threads = [threading.Thread(target=drain, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def _submitit_wave(specs: list[dict], executor_name: str, folder: Path, options: Mapping, bar) -> list[str]:
    import submitit
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm" if executor_name == "slurm" else "local")
    parameters = {"timeout_min": int(options.get("time_min") or 24 * 60), "name": "semscale-train",
                  "cpus_per_task": int(options.get("threads") or 1),
                  "gpus_per_node": int(options.get("gpus_per_job") or 0)}
    if executor_name == "slurm" and options.get("partition"):
        parameters["slurm_partition"] = options["partition"]
    executor.update_parameters(**parameters)
    jobs = [executor.submit(train_spec, spec) for spec in specs]
    failures = []
    for spec, job in zip(specs, jobs):
        try:
            job.result()
        except Exception as error:  # a failed job: recorded, the others still finish
            first = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            failures.append(f"{Path(spec['folder']).name}: {first} (job {job.job_id}, logs in {folder})")
        bar.update(1)
    return failures


def train_runs(profile: Mapping, run_dir, *, grid: Mapping | None = None, only: Sequence[str] | None = None,
               notebooks_dir=None, executor: str = "local", slots: Sequence[Slot] | None = None,
               options: Mapping | None = None, stream=None, progress: bool = True) -> tuple[int, RunPlan]:
    """Train every run of the profile's plan into ``<run_dir>/training-runs`` (see the module docstring), wave by
    wave, until the plan has nothing left to train. Returns (exit code: 0 every run finished / 1 some failed, the
    final plan). Prints the plan first and one line at the end: runs trained, reused, failed, and the time."""
    stream = stream or sys.stdout
    _check_executor(executor)
    options = dict(options or {})
    memo: dict = {}          # planners that read no finished run plan once
    # every check comes first: nothing trains before the whole plan is known to be valid
    plan = plan_runs(profile, run_dir, grid=grid, only=only, notebooks_dir=notebooks_dir, memo=memo)
    print_plan(plan, stream)
    # a submitit job trains on what its job was given (a Slurm job's GPUs): "auto", never a fixed "cpu"
    slots = list(slots or [Slot("cpu" if executor == "local" else "auto", int(options.get("threads") or 1))])
    started, trained, failures = time.perf_counter(), 0, []
    workers = [_Worker(slot) for slot in slots] if executor == "local" else []
    reused = plan.count("finished")
    for wave in range(1, MAX_WAVES + 1):
        todo = [run for run in plan.runs if run.state != "finished"]
        if not todo or failures:
            break
        plan.runs_dir.mkdir(parents=True, exist_ok=True)
        specs = [run_spec(run.config, run.folder, slots[i % len(slots)]) for i, run in enumerate(todo)]
        print(f"wave {wave}: {len(todo)} run(s), executor {executor}"
              + (f", {len(slots)} slot(s) ({', '.join(sorted({s.device for s in slots}))})" if executor == "local"
                 else ""), file=stream, flush=True)
        with tqdm(total=len(specs), desc=f"wave {wave}", unit="run", disable=not progress, file=sys.stderr) as bar:
            if executor == "local":
                failed = _local_wave(specs, workers, plan.runs_dir, bar)
            else:
                failed = _submitit_wave(specs, executor, plan.runs_dir / ".submitit", options, bar)
        trained, failures = trained + len(todo) - len(failed), failures + failed
        plan = plan_runs(profile, run_dir, grid=grid, only=only, notebooks_dir=notebooks_dir, memo=memo)
    for worker in workers:
        worker.close()
    for line in failures:
        print(f"failed: {line}", file=stream)
    left = [run for run in plan.runs if run.state != "finished"]
    print(f"{trained} run(s) trained, {reused} reused, {len(failures)} failed, {len(left)} not finished; "
          f"{format_duration(time.perf_counter() - started)}; runs folder: {plan.runs_dir}", file=stream, flush=True)
    return (1 if failures or left else 0), plan


__all__ = ["EXECUTORS", "Slot", "local_slots", "run_spec", "train_runs", "train_spec", "visible_gpus"]
