"""Training-loop costs measured side by side in one run: DSB overhead and the input pipeline.

1. **DSB overhead** — time per training iteration of dynamic re-weighting (stage 3: the pool already holds a full
   epoch of features, every iteration pushes a batch, drops the oldest and refreshes the weights) over the plain
   loss, same model, data, batches and augmentation. Fashion-MNIST-LT (IF 100) with resnet-tiny, and
   CIFAR-100-LT-shaped synthetic data with ResNet-32. The paper reports ≈ 1.1× (Table 11: ~90 % of the
   baseline's speed); our goal is ≤ 1.05×.
2. **Input pipeline** — images/s of the trainer's path (the whole uint8 set as one tensor on the device, crop and
   flip drawn per batch with tensor indexing: ``TensorBatches``) against a conventional torchvision ``DataLoader``
   with per-sample PIL transforms as in public LDAM-DRW code (RandomCrop(32, padding=4), RandomHorizontalFlip,
   ToTensor, Normalize; ``num_workers=2``), on CIFAR-100-LT-sized synthetic data (10,847 images 32×32×3, 100
   classes), batch 128: the pipeline alone, and feeding ResNet-32 (forward, backward, SGD step). Goal ≥ 1.5×
   end-to-end on a CPU.

Both variants of a comparison run in alternating order within each round (A B, B A, ...) so that machine noise
hits both; the reported ratio is the median over rounds. Only the training loop is timed (no evaluation); the
DataLoader is timed in steady state (its workers are started and warm before the clock starts, which favours it).

``--threads`` (default 1) sets torch's intra-op threads: on a shared 2-core machine, OpenMP with 2 threads next to
other busy processes can be 10–100× slower than 1 thread, which would swamp every ratio here.

``--gpu-check``: the CIFAR-100-LT ResNet-32 protocol (batch 128, bf16 autocast and channels-last as in the trainer)
for a few epochs with and without DSB on CUDA; prints images/s and the projected time of the full 200-epoch run
(real CIFAR-100-LT when it is available locally, else — or with ``--synthetic`` — random uint8 data of that shape).
See ``benchmarks/gpu_check.sh``.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_training.py [--quick]``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from semscale_lib.data import load_dataset, long_tailed_counts, long_tailed_subset
from semscale_lib.data.batches import TensorBatches
from semscale_lib.models import build_model
from semscale_lib.training import Criterion, evaluate, make_config, train_step

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)   # as in LDAM-DRW's code
BATCH = 128


# ---------------------------------------------------------------------------------------------------------- data
def synthetic_cifar100_lt(seed: int = 0, imbalance_factor: float = 100.0):
    """Random uint8 images (10,847, 32, 32, 3) with CIFAR-100-LT's class counts (exp profile, n_max 500)."""
    counts = long_tailed_counts(500, 100, imbalance_factor, "exp")
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(100), counts)
    images = rng.integers(0, 256, size=(len(labels), 32, 32, 3), dtype=np.uint8)
    return images, labels, np.asarray(counts)


def synthetic_cifar100_test(seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(10000, 32, 32, 3), dtype=np.uint8), np.repeat(np.arange(100), 100)


def fashion_mnist_lt(imbalance_factor: float = 100.0):
    data, _ = long_tailed_subset(load_dataset("fashion-mnist"), imbalance_factor=imbalance_factor, save=False)
    return data.images, data.labels, np.bincount(data.labels, minlength=10)


def real_cifar100_lt():
    """CIFAR-100-LT (IF 100) and the CIFAR-100 test set if CIFAR-100 is on disk, else None."""
    try:
        train = load_dataset("cifar100")
        test = load_dataset("cifar100", train=False)
    except Exception as error:  # noqa: BLE001 - any reason it is absent
        print(f"  (CIFAR-100 not available: {type(error).__name__}: {str(error).splitlines()[0]})")
        return None
    data, _ = long_tailed_subset(train, imbalance_factor=100.0, save=False)
    return data.images, data.labels, np.bincount(data.labels, minlength=100), test.images, test.labels


# ------------------------------------------------------------------------------------------------- the loop
class LoopHarness:
    """The trainer's inner loop (``semscale_lib.training.train``) on given data: TensorBatches → the trainer's own
    ``train_step`` with the run's ``Criterion`` (its weighting rule's epoch weights, and for "dsb" its ``step`` on
    every batch's embeddings) → SGD, with the trainer's per-iteration loss read-back, channels-last, and bf16
    autocast on CUDA."""

    def __init__(self, images, labels, counts, *, model: str, reweight: str, device: torch.device, seed: int = 0,
                 pad: int = 4, flip: bool = True, dsb_prefill: bool = True):
        self.device, self.reweight = device, reweight
        self.amp = device.type == "cuda"
        self.config = make_config(dataset="cifar100-lt", model=model, reweight=reweight, batch_size=BATCH,
                                  dsb_stage_epochs=1, dsb_refresh_every=1)
        self.batches = TensorBatches(images, labels, device=device, pad=pad, flip=flip)
        num_classes = len(counts)
        torch.manual_seed(seed)
        self.model = build_model(model, num_classes, in_channels=images.shape[-1]).to(device)
        self.model = self.model.to(memory_format=torch.channels_last)     # as the trainer
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9, weight_decay=2e-4)
        self.criterion = Criterion.from_config(self.config, counts, dataset_size=len(self.batches), device=device)
        self.dsb_seconds = 0.0
        if self.criterion.uses_features and device.type == "cpu":
            self.criterion.rule.step = self._timed(self.criterion.rule.step)      # DSB's share of each step
        if self.criterion.uses_features and dsb_prefill:
            # stage 3 at once: the pool holds one epoch of (here random) features
            g = torch.Generator().manual_seed(seed)
            dim = self.model.embedding_dim
            for start in range(0, len(self.batches), BATCH):
                idx = torch.arange(start, min(start + BATCH, len(self.batches)))
                self.pool.push(torch.randn(len(idx), dim, generator=g).to(device),
                               self.batches.labels[idx.to(device)], indices=idx, dequeue=False)
        self.total = 0.0

    @property
    def pool(self):
        """The DSB storage pool (reweight "dsb" only)."""
        return self.criterion.rule.dynamic.pool

    def _timed(self, step):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return step(*args, **kwargs)
            finally:
                self.dsb_seconds += time.perf_counter() - started
        return timed

    def orders(self, seed: int, iterations: int):
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self.batches), generator=g)
        while len(order) < iterations * BATCH:
            order = torch.cat([order, torch.randperm(len(self.batches), generator=g)])
        return [order[i * BATCH:(i + 1) * BATCH] for i in range(iterations)], g

    def step(self, indices: torch.Tensor, generator: torch.Generator, epoch: int = 2) -> None:
        inputs, targets = self.batches.batch(indices, generator=generator, augment=True)
        self.step_on(inputs, targets, indices, epoch)

    def step_on(self, inputs, targets, indices, epoch: int = 2) -> None:
        loss = train_step(self.model, self.criterion, self.optimizer, inputs, targets, epoch=epoch,
                          indices=indices.to(self.device), amp=self.amp)
        self.total += float(loss)

    def run(self, seed: int, iterations: int, epoch: int = 2, *, end_epoch: bool = False) -> float:
        """Seconds for ``iterations`` training iterations on batches drawn with ``seed``, starting with the rule's
        weights for ``epoch`` as the trainer does; ``end_epoch``: a whole epoch, so the rule's end-of-epoch work
        (DSB: rebuilding the pool's moments) is done and timed too."""
        batches, generator = self.orders(seed, iterations)
        self.criterion.start_epoch(epoch)
        sync(self.device)
        started = time.perf_counter()
        for indices in batches:
            self.step(indices, generator, epoch)
        if end_epoch:
            self.criterion.end_epoch()
        sync(self.device)
        return time.perf_counter() - started


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(variants: dict, rounds: int, measure) -> dict:
    """{name: [seconds per round]} with the variants' order alternating between rounds (A B, B A, ...)."""
    names = list(variants)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(measure(variants[name], r))
    return times


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(numerator, denominator))


# ---------------------------------------------------------------------------------------------- 1. DSB overhead
def bench_dsb_overhead(title, images, labels, counts, *, model, device, rounds, iterations, warmup=3):
    print(f"\n[DSB overhead] {title}: {len(labels)} images, {len(counts)} classes, {model}, batch {BATCH}, "
          f"{rounds} rounds × {iterations} iterations per variant")
    pad = 4 if images.shape[1] >= 28 else 1          # as the trainer; it flips both datasets too
    variants = {name: LoopHarness(images, labels, counts, model=model, reweight=name, device=device, pad=pad)
                for name in ("none", "dsb")}
    pool = variants["dsb"].pool
    print(f"  DSB pool before timing: {len(pool)} features in {len(pool.batches)} batches, "
          f"d = {pool.sums.shape[1]}; refresh every iteration (stage 3)")
    for harness in variants.values():
        harness.run(seed=999, iterations=warmup)
    variants["dsb"].dsb_seconds = 0.0
    times = interleaved(variants, rounds, lambda h, r: h.run(seed=r, iterations=iterations))
    ratio = median_ratio(times["dsb"], times["none"])
    for name in variants:
        per_iter = statistics.median(times[name]) / iterations
        print(f"  {name:>4}: {1e3 * per_iter:8.1f} ms/iteration  {BATCH / per_iter:8.0f} images/s  "
              f"(rounds: {', '.join(f'{t:.2f}' for t in times[name])} s)")
    if device.type == "cpu":
        dsb_ms = 1e3 * variants["dsb"].dsb_seconds / (rounds * iterations)
        print(f"  of which the dsb rule's step (push, pop, refresh S, weights): {dsb_ms:.2f} ms/iteration")
    none_ms = 1e3 * statistics.median(times["none"]) / iterations
    if device.type == "cpu":
        print(f"  DSB step time over the plain iteration time: 1 + {dsb_ms / none_ms:.3f} "
              f"(a noise-free estimate of the ratio)")
    print(f"  DSB / none time ratio (median over rounds): {ratio:.3f}×  "
          f"[paper ≈ 1.1×, goal ≤ 1.05× → {'met' if ratio <= 1.05 else 'NOT met'}]")
    return ratio


# ---------------------------------------------------------------------------------------------- 2. pipeline
class PILDataset(torch.utils.data.Dataset):
    """uint8 (N, H, W, 3) images served one by one as PIL images through torchvision transforms."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        from PIL import Image
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def conventional_loader(images, labels, *, workers: int, seed: int, pin: bool):
    from torchvision import transforms
    transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(), transforms.Normalize(CIFAR_MEAN, CIFAR_STD)])
    return torch.utils.data.DataLoader(PILDataset(images, labels, transform), batch_size=BATCH, shuffle=True,
                                       num_workers=workers, pin_memory=pin,
                                       generator=torch.Generator().manual_seed(seed))


def bench_pipeline(images, labels, counts, *, device, rounds, iterations, e2e_rounds, e2e_iterations, workers):
    print(f"\n[Input pipeline] CIFAR-100-LT-shaped synthetic data: {len(labels)} images 32×32×3 uint8, "
          f"{len(counts)} classes, batch {BATCH}; DataLoader: per-sample PIL transforms, num_workers={workers}")
    tensor = LoopHarness(images, labels, counts, model="resnet32", reweight="none", device=device)
    loader = conventional_loader(images, labels, workers=workers, seed=0, pin=device.type == "cuda")
    warm = 3

    def produce_tensor(_, r, count, train):
        batches, g = tensor.orders(100 + r, count + warm)
        for i, idx in enumerate(batches):
            if i == warm:
                sync(device)
                started = time.perf_counter()
            inputs, targets = tensor.batches.batch(idx, generator=g, augment=True)
            if train:
                tensor.step_on(inputs, targets, idx)
        sync(device)
        return time.perf_counter() - started

    def produce_loader(_, r, count, train):
        iterator = iter(loader)            # workers start here; timed from the (warm + 1)-th batch
        for i in range(count + warm):
            if i == warm:
                sync(device)
                started = time.perf_counter()
            inputs, targets = next(iterator)
            inputs = inputs.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            if train:
                tensor.step_on(inputs, targets, torch.empty(0, dtype=torch.int64))
        sync(device)
        del iterator
        return time.perf_counter() - started

    results = {}
    for label, n_rounds, count, train in (("pipeline only", rounds, iterations, False),
                                          ("feeding ResNet-32", e2e_rounds, e2e_iterations, True)):
        variants = {"TensorBatches": produce_tensor, "DataLoader": produce_loader}
        times = interleaved(variants, n_rounds, lambda fn, r: fn(None, r, count, train))
        ratio = median_ratio(times["DataLoader"], times["TensorBatches"])
        print(f"  {label}: {n_rounds} rounds × {count} batches per variant")
        for name in variants:
            rate = BATCH * count / statistics.median(times[name])
            print(f"    {name:>13}: {rate:9.0f} images/s  (rounds: {', '.join(f'{t:.2f}' for t in times[name])} s)")
        print(f"    TensorBatches / DataLoader throughput (median over rounds): {ratio:.2f}×")
        results[label] = ratio
    goal = results["feeding ResNet-32"]
    print(f"  end-to-end goal ≥ 1.5×: {'met' if goal >= 1.5 else 'NOT met'} ({goal:.2f}×)")
    return results


# ---------------------------------------------------------------------------------------------- GPU protocol
def gpu_check(args, device: torch.device) -> None:
    print(f"\n[GPU protocol] ResNet-32, batch {BATCH}, bf16 autocast, channels-last; device: "
          f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else device}")
    real = None if args.synthetic else real_cifar100_lt()
    if real is None:
        images, labels, counts = synthetic_cifar100_lt()
        test_images, test_labels = synthetic_cifar100_test()
        print(f"  data: synthetic CIFAR-100-LT-shaped uint8 ({len(labels)} train, {len(test_labels)} test)")
    else:
        images, labels, counts, test_images, test_labels = real
        print(f"  data: CIFAR-100-LT IF 100 ({len(labels)} train), CIFAR-100 test ({len(test_labels)})")
    harnesses = {name: LoopHarness(images, labels, counts, model="resnet32", reweight=name, device=device,
                                   dsb_prefill=False) for name in ("none", "dsb")}
    test_batches = TensorBatches(test_images, test_labels, device=device)
    per_epoch = -(-len(labels) // BATCH)
    iterations = min(per_epoch, args.max_iterations or per_epoch)
    images_per_run = min(len(labels), iterations * BATCH)
    if iterations < per_epoch:
        print(f"  --max-iterations: {iterations} of {per_epoch} iterations per epoch; times are scaled up")
    epoch_times = {name: [] for name in harnesses}
    eval_times = []
    for epoch in range(1, args.epochs + 1):
        for name in (list(harnesses) if epoch % 2 else list(harnesses)[::-1]):
            harness = harnesses[name]
            # DSB: stage 3 from epoch 2; a whole epoch, so the rule's end-of-epoch pool rebuild is timed too
            seconds = harness.run(seed=epoch, iterations=iterations, epoch=epoch, end_epoch=True)
            seconds *= len(labels) / images_per_run                                    # → one full epoch
            epoch_times[name].append(seconds)
            print(f"  epoch {epoch} {name:>4}: {seconds:7.2f} s  {len(labels) / seconds:9.0f} images/s")
        sync(device)
        started = time.perf_counter()
        evaluate(harnesses["none"].model, test_batches, counts, batch_size=512, amp=device.type == "cuda")
        sync(device)
        eval_times.append(time.perf_counter() - started)
    steady = slice(1, None) if args.epochs > 1 else slice(None)     # epoch 1: warm-up (kernels, stage 1)
    evaluation = statistics.median(eval_times[steady])
    print(f"  evaluation of {len(test_labels)} test images: {evaluation:.2f} s per epoch")
    for name in harnesses:
        train_s = statistics.median(epoch_times[name][steady])
        total = 200 * (train_s + evaluation)
        print(f"  {name:>4}: {len(labels) / train_s:9.0f} images/s (steady); projected 200 epochs with "
              f"per-epoch evaluation: {total / 60:.1f} min ({total / 3600:.2f} h)")
    ratio = median_ratio(epoch_times["dsb"][steady], epoch_times["none"][steady])
    print(f"  DSB / none epoch-time ratio (epochs ≥ 2, stage 3): {ratio:.3f}×  [paper ≈ 1.1×]")


# ----------------------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and iterations (about a minute)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1, see above)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--only", default="dsb,pipeline",
                        help="comma-separated sections: dsb, dsb-cifar, pipeline (default dsb,pipeline; "
                             "dsb also runs dsb-cifar unless --quick)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the conventional pipeline")
    parser.add_argument("--gpu-check", action="store_true",
                        help="run the CIFAR-100-LT ResNet-32 protocol with and without DSB on CUDA instead")
    parser.add_argument("--epochs", type=int, default=3, help="with --gpu-check: epochs per variant")
    parser.add_argument("--synthetic", action="store_true",
                        help="with --gpu-check: random CIFAR-100-LT-shaped data even if CIFAR-100 is present")
    parser.add_argument("--allow-cpu", action="store_true", help="with --gpu-check: run on the CPU (smoke test)")
    parser.add_argument("--max-iterations", type=int, default=None,
                        help="with --gpu-check: at most this many iterations per epoch (smoke test; scaled up)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.gpu_check:
        if not args.allow_cpu:
            if not torch.cuda.is_available():
                print("gpu check: no CUDA GPU is visible to torch (torch.cuda.is_available() is False); "
                      "nothing to measure. Use --allow-cpu for a smoke test on the CPU.", file=sys.stderr)
                return 2
            device = torch.device("cuda")
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
        gpu_check(args, device)
        return 0
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA GPU is visible to torch", file=sys.stderr)
        return 2

    sections = set(args.only.split(","))
    rounds, iterations = (2, 8) if args.quick else (5, 25)
    print(f"torch {torch.__version__}, device {device}, intra-op threads {torch.get_num_threads()}"
          f"{' (quick)' if args.quick else ''}")
    started = time.perf_counter()
    summary = {}
    if "dsb" in sections:
        try:
            images, labels, counts = fashion_mnist_lt()
        except Exception as error:  # noqa: BLE001
            print(f"\n[DSB overhead] Fashion-MNIST unavailable ({error}); skipped")
        else:
            summary["DSB/none, Fashion-MNIST-LT resnet-tiny"] = bench_dsb_overhead(
                "Fashion-MNIST-LT IF 100", images, labels, counts, model="resnet-tiny", device=device,
                rounds=rounds, iterations=iterations)
    if "dsb-cifar" in sections or ("dsb" in sections and not args.quick):
        images, labels, counts = synthetic_cifar100_lt()
        summary["DSB/none, CIFAR-100-LT-shaped ResNet-32"] = bench_dsb_overhead(
            "CIFAR-100-LT-shaped synthetic", images, labels, counts, model="resnet32", device=device,
            rounds=3 if not args.quick else 2, iterations=8 if not args.quick else 3)
    if "pipeline" in sections:
        images, labels, counts = synthetic_cifar100_lt()
        result = bench_pipeline(images, labels, counts, device=device, workers=args.workers,
                                rounds=3 if not args.quick else 2, iterations=30 if not args.quick else 10,
                                e2e_rounds=2, e2e_iterations=15 if not args.quick else 3)
        summary["TensorBatches/DataLoader images/s, pipeline only"] = result["pipeline only"]
        summary["TensorBatches/DataLoader images/s, feeding ResNet-32"] = result["feeding ResNet-32"]
    print("\nSummary (ratios measured side by side in this run):")
    for name, value in summary.items():
        print(f"  {name}: {value:.3f}×")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
