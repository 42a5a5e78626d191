"""Input checks on tensors that never make the host wait for the device.

``bool(tensor)``, ``.item()``, ``.tolist()`` or ``torch.nonzero`` on a CUDA tensor block the Python thread until the
GPU has caught up; done every training iteration (DSB's pool update and weight refresh) that stall costs more than
the check. :func:`require` checks a condition computed as a tensor without reading it back on CUDA.
"""
from __future__ import annotations

from typing import Callable

import torch


def require(ok: torch.Tensor, message: str, details: Callable[[], str] | None = None) -> None:
    """Raise ``ValueError(message + details())`` unless the one-element bool tensor ``ok`` is true.

    On the CPU the check is immediate, and ``details`` (called only on failure, so it may read tensors back, e.g.
    the offending class indices) completes the message. On CUDA it is ``torch._assert_async``: the host goes on,
    and a failure surfaces at the device's next synchronisation as a device-side assert (without ``details``; the
    CUDA context is unusable afterwards, as after an out-of-range class index in the loss).
    """
    try:
        torch._assert_async(ok, message)
    except RuntimeError:        # only where the check runs on the host: CPU tensors
        raise ValueError(message if details is None else message + details()) from None


__all__ = ["require"]
