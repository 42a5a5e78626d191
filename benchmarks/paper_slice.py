"""How long will the paper take here? A time-boxed slice of the paper profile — plan, train-runs, notebooks — with the
GPUs' utilisation sampled while runs train, and the full profile's wall time projected from what was measured.

    .venv/bin/python benchmarks/paper_slice.py                       # every visible GPU, 4 runs per GPU
    .venv/bin/python benchmarks/paper_slice.py --epochs 2 --only 04  # a thinner slice
    .venv/bin/python benchmarks/paper_slice.py --device cpu --only 03 --epochs 1 --scale 0.5    # the logic, on a CPU

1. Data: CIFAR-10/100 from the data root when they are there, else synthetic files at CIFAR's sizes (``--scale``
   shrinks them) in a temporary data root: timing only, the images carry no signal.
2. ``semscale plan --profile paper``: every run of the full profile and the training images it processes.
3. The slice: the same profile with every training budget cut to ``--epochs`` epochs (DSB from epoch 1) and one
   seed, trained by ``semscale train-runs`` while ``nvidia-smi`` is sampled once a second.
4. The slice's notebooks by ``semscale run --jobs``: they find every run finished and only measure.

Prints per-run images/s (from each run's metrics.csv), the slots' images/s together, the GPUs' busy fraction
while runs trained, and the projection: the full plan's training images / the measured images/s together, plus
the notebooks' measuring time, on this machine and on N such machines. A projection, not a measurement: say so
wherever it is quoted.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from semscale_lib.data.synthetic import write_synthetic_cifar  # noqa: E402
from semscale_lib.runner import default_profiles_dir, format_duration  # noqa: E402
from semscale_lib.runner.train_runs import visible_gpus  # noqa: E402

def slice_settings(epochs: int) -> dict:
    """Per notebook of profiles/paper.yaml, the settings that make its slice (every other setting is the profile's)."""
    return {"01": {"min_epochs": epochs, "min_steps": 0, "seeds": [0]},
            "02": {"epochs": epochs, "seeds": [0]},
            "03": {"epochs": epochs, "seeds": [0]},
            "04": {"epochs": epochs, "dsb_stage_epochs": 1, "stage_sweep": [], "seeds": [0]},
            "06": {"epochs": epochs, "dsb_stage_epochs": 1, "seeds": [0]}}


def sliced_profile(path: Path, epochs: int) -> Path:
    profile = yaml.safe_load((default_profiles_dir() / "paper.yaml").read_text())
    for key, values in slice_settings(epochs).items():
        profile["parameters"][key].update(values)
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


class UtilisationSampler:
    """``nvidia-smi`` utilisation (%) of every GPU once a second while running; empty without nvidia-smi."""

    def __init__(self):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                values = [float(v) for v in out.split()]
                if values:
                    self.samples.append(sum(values) / len(values))
            except (OSError, ValueError, subprocess.TimeoutExpired):
                return
            self._stop.wait(1.0)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)


def semscale(*args, env, timeout=None) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "semscale_lib", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"paper_slice: semscale {args[0]} failed (exit {done.returncode}):\n"
                         + done.stdout[-2000:] + done.stderr[-2000:])
    return done, time.perf_counter() - started


def run_throughput(runs_dir: Path) -> pd.DataFrame:
    """Per finished run: folder, images (training images processed), seconds (training time), images/s."""
    rows = []
    for metrics in sorted(runs_dir.glob("*/metrics.csv")):
        saved = json.loads((metrics.parent / "config.json").read_text())
        epochs = len(pd.read_csv(metrics))
        images = epochs * sum(saved["train_counts"])
        seconds = float(pd.read_csv(metrics)["seconds"].sum())
        rows.append({"run": metrics.parent.name, "images": images, "seconds": seconds,
                     "images/s": images / seconds if seconds > 0 else float("nan")})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs of every run of the slice (default 2)")
    parser.add_argument("--only", help="notebook keys of the slice, e.g. 03,04 (default: all the profile's)")
    parser.add_argument("--device", default="auto", help="auto (every visible GPU) or cpu")
    parser.add_argument("--runs-per-gpu", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=4, help="notebooks side by side")
    parser.add_argument("--scale", type=float, default=1.0, help="synthetic data at this fraction of CIFAR's size")
    parser.add_argument("--machines", type=int, default=4, help="also project onto this many such machines")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per phase at most")
    parser.add_argument("--keep", help="folder to keep the slice's run folder in (default: a temporary one)")
    args = parser.parse_args(argv)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="paper-slice-"))
    env = {**os.environ, "SEMSCALE_VERIFY_CHECKSUMS": "0"}
    data = env.get("SEMSCALE_DATA")
    if not (data and (Path(data) / "cifar" / "cifar-100-python").is_dir()):
        def size(n):
            return max(2, round(n * args.scale))
        write_synthetic_cifar(work / "data", train_per_class=size(5000), test_per_class=size(1000),
                              cifar100_train_per_class=size(500), cifar100_test_per_class=size(100))
        env.update(SEMSCALE_DATA=str(work / "data"), SEMSCALE_SPLITS=str(work / "splits"))
        print(f"data: synthetic CIFAR-10/100 at {args.scale:g} × CIFAR's sizes (timing only) in {work / 'data'}")
    only = ["--only", args.only] if args.only else []
    planned, plan_seconds = semscale("plan", "--profile", "paper", *only, "--json", env=env, timeout=args.timeout)
    full = json.loads(planned.stdout)
    full_images = sum(r["images"] or 0 for r in full["runs"]) + full["waiting_images"]
    print(f"full paper profile{' (' + args.only + ')' if args.only else ''}: {len(full['runs'])} runs, "
          f"{full_images / 1e6:.1f} M training images (plan: {plan_seconds:.0f} s)")

    profile = sliced_profile(work / "paper-slice.yaml", args.epochs)
    out = work / "run"
    slots = ["--gpus", "0", "--workers", str(args.jobs)] if args.device == "cpu" else \
        ["--runs-per-gpu", str(args.runs_per_gpu)]
    slot_count = args.jobs if args.device == "cpu" else args.runs_per_gpu * max(1, visible_gpus())
    with UtilisationSampler() as sampler:
        _, train_seconds = semscale("train-runs", "--profile", profile, *only, "--out", out, *slots, "--no-progress",
                                    env=env, timeout=args.timeout)
    runs = run_throughput(out / "training-runs")
    sliced_images = int(runs["images"].sum())
    together = sliced_images / train_seconds
    print(f"slice: {len(runs)} runs of {args.epochs} epoch(s), {sliced_images / 1e6:.2f} M images in "
          f"{format_duration(train_seconds)} (with start-up): {together:,.0f} images/s together")
    print(runs.assign(**{"images/s": runs["images/s"].round(0)}).to_string(index=False))
    busy = sampler.samples
    if busy:
        print(f"GPU utilisation while runs trained: mean {sum(busy) / len(busy):.0f} %, "
              f"{100 * sum(b >= 80 for b in busy) / len(busy):.0f} % of 1-s samples at ≥ 80 %")
    else:
        print("GPU utilisation: not sampled (no nvidia-smi)")
    _, notebook_seconds = semscale("run", "--profile", profile, *only, "--out", out, "--jobs", args.jobs,
                                   "--no-progress", env=env, timeout=args.timeout)
    measuring = notebook_seconds * len(full["runs"]) / max(1, len(runs))    # the notebooks measure every run
    print(f"notebooks of the slice (measuring only): {format_duration(notebook_seconds)}; for the full profile's "
          f"{len(full['runs'])} runs: {format_duration(measuring)}")
    training = full_images / together
    packed = full_images / (runs["images/s"].median() * slot_count)
    print(f"projected full paper profile: {format_duration(training + measuring)} on this machine (training "
          f"{format_duration(training)}; {format_duration(packed)} if its {slot_count} slots never waited: the "
          f"median run's images/s × slots), {format_duration(training / args.machines + measuring)} on "
          f"{args.machines} such machines — planned training images / the slice's images/s together (start-up "
          "and waves included), plus the notebooks' measuring time scaled by the number of runs: a projection, not a "
          "measurement")
    return 0


if __name__ == "__main__":
    sys.exit(main())
