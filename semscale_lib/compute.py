"""Where the measures compute: the ``device`` keyword of :mod:`semscale_lib.scale` and
:mod:`semscale_lib.difficulty`, checked once, and float32 GEMMs kept IEEE float32 on CUDA.

A measure's ``device`` is a notebook's ``device`` parameter as it is (``"auto"``, ``"cpu"``, ``"cuda"``,
``"cuda:N"``, ``"mps"``) or a :class:`torch.device`. The measures need float64, which MPS lacks, so ``"mps"`` measures
on the CPU. Training's own device rules are :func:`semscale_lib.training.device.resolve_device`.
"""
from __future__ import annotations

import contextlib

import torch

_DEVICE_HELP = "expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"


def measure_device(device) -> torch.device | None:
    """``device`` → the :class:`torch.device` a measure computes on; None stays None (the caller's default).

    ``"auto"``: CUDA when this machine has it, else the CPU; ``"mps"``: the CPU (no float64 there). An unknown name
    is a one-line ValueError, a CUDA device this machine lacks a one-line RuntimeError, any other type a TypeError.
    """
    if device is None:
        return None
    if isinstance(device, str):
        name = device.strip().lower()
        if name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(name)
        except (RuntimeError, ValueError):
            raise ValueError(f"device: unknown device {device!r}; {_DEVICE_HELP}") from None
    elif not isinstance(device, torch.device):
        raise TypeError(f"device must be a string or a torch.device, got {type(device).__name__}")
    if device.type == "mps":
        return torch.device("cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device: cannot measure on {str(device)!r}; {_DEVICE_HELP}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device: CUDA was requested ({str(device)!r}) but torch.cuda.is_available() is "
                               "False; use 'cpu' or 'auto'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"device: {str(device)!r} was requested but this machine has "
                               f"{torch.cuda.device_count()} CUDA device(s)")
    return device


def is_cpu(device: torch.device | None) -> bool:
    """True for None (the default: today's CPU path) and the CPU."""
    return device is None or device.type == "cpu"


@contextlib.contextmanager
def ieee_float32():
    """Within the block, float32 matrix products on CUDA are IEEE float32, not TF32 (10-bit mantissa): the k-NN
    screening's round-off bound assumes float32. The global flags are restored afterwards."""
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(precision)


__all__ = ["ieee_float32", "is_cpu", "measure_device"]
