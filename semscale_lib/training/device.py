"""Where a run computes: the device (``auto`` → CUDA when present), checks that a requested GPU exists, the
process group under ``torchrun``, deterministic CPU kernels, and the environment a run records."""
from __future__ import annotations

import platform
import sys

import numpy as np
import torch
import torch.distributed as dist

from ..settings import environment


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; any other name as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def deterministic_algorithms() -> None:
    """``torch.use_deterministic_algorithms(True)``, without the import of ``torch._inductor`` that the public call
    makes to set the compiler's own flag (≈ 3 s per process; eager training never reads it). When the compiler is
    already loaded, or torch lacks the internal setter, the public call is made."""
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True)
    else:
        setter(True)


def environment_info(device: torch.device) -> dict:
    """Versions, device, platform and CPU threads, as a run's config.json records them."""
    from importlib.metadata import version   # not `import torchvision`: that costs seconds, for a version string

    info = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": version("torchvision"),
            "numpy": np.__version__, "device": str(device), "platform": platform.platform(),
            "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def distributed() -> tuple[int, int]:
    """(rank, world size); under ``torchrun`` (WORLD_SIZE > 1) the process group is initialised here
    (NCCL on CUDA, gloo on the CPU)."""
    if environment().world_size > 1 and dist.is_available() and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def check_device(name: str) -> None:
    """Refuse (RuntimeError) a CUDA device this machine does not have, before anything is loaded or written."""
    if not str(name).startswith("cuda"):
        return
    if not torch.cuda.is_available():
        raise RuntimeError(f"CUDA was requested (--device {name}) but torch.cuda.is_available() is False; use "
                           "--device cpu or auto")
    index = torch.device(name).index
    if index is not None and index >= torch.cuda.device_count():
        raise RuntimeError(f"CUDA device {index} was requested (--device {name}) but this machine has "
                           f"{torch.cuda.device_count()} (cuda:0 … cuda:{torch.cuda.device_count() - 1})")
