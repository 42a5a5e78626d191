"""Counting the operations that make the host wait for a CUDA device, on any device (shared by the DSB tests).

On the CPU nothing waits, but the same Python calls on a CUDA tensor would: reading a value back (``.item()``,
``.tolist()``, ``.cpu()``, ``.numpy()``, ``bool`` / ``int`` / ``float`` of a tensor, ``if tensor:``), and the ops
whose output size depends on the data (``torch.nonzero``, ``torch.unique``, ``masked_select``, indexing with a
boolean mask, one-argument ``torch.where``, ``bincount``) or that check their result on the host (``eigh``,
``eigvalsh``, ``cholesky`` without ``_ex``). :func:`count_host_syncs` counts them by name while it is active.
"""
from __future__ import annotations

import contextlib
from collections import Counter

import torch

#: Tensor methods that read a value back to the host.
READBACK_METHODS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")
#: torch functions (and the Tensor methods of the same name) whose output size depends on the data, or that check
#: their result on the host.
DATA_DEPENDENT = {torch: ("nonzero", "argwhere", "unique", "unique_consecutive", "masked_select", "bincount"),
                  torch.linalg: ("eigh", "eigvalsh", "cholesky", "inv", "solve")}


def _is_mask(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(part, torch.Tensor) and part.dtype == torch.bool for part in parts)


@contextlib.contextmanager
def count_host_syncs(monkeypatch):
    """While active, every call of the operations above adds one to the returned :class:`Counter` (by name)."""
    calls = Counter()

    def counting(name, function):
        def counted(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return counted

    with monkeypatch.context() as patch:
        for name in READBACK_METHODS:
            patch.setattr(torch.Tensor, name, counting(f"Tensor.{name}", getattr(torch.Tensor, name)))
        for module, names in DATA_DEPENDENT.items():
            for name in names:
                patch.setattr(module, name, counting(f"{module.__name__}.{name}", getattr(module, name)))
                if module is torch and hasattr(torch.Tensor, name):
                    patch.setattr(torch.Tensor, name, counting(f"Tensor.{name}", getattr(torch.Tensor, name)))
        where, getitem, setitem = torch.where, torch.Tensor.__getitem__, torch.Tensor.__setitem__

        def counted_where(condition, *args, **kwargs):
            if not args and not kwargs:
                calls["torch.where(condition)"] += 1
            return where(condition, *args, **kwargs)

        def counted_getitem(self, index):
            if _is_mask(index):
                calls["Tensor[bool mask]"] += 1
            return getitem(self, index)

        def counted_setitem(self, index, value):
            if _is_mask(index):
                calls["Tensor[bool mask] ="] += 1
            return setitem(self, index, value)

        patch.setattr(torch, "where", counted_where)
        patch.setattr(torch.Tensor, "__getitem__", counted_getitem)
        patch.setattr(torch.Tensor, "__setitem__", counted_setitem)
        yield calls
