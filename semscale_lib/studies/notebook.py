"""What every notebook does around its claim: output folders, JSON, figures, tables and version checks."""
from __future__ import annotations

import importlib
import io
import json
import math
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
from packaging.version import Version

def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean_nan(obj):
    """NaN/inf → None, recursively (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_nan(v) for v in obj]
    return obj


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON (NaN → null, numpy → python); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean_nan(obj), indent=2, default=_json_default, ensure_ascii=False) + "\n")
    return path


def prepare_out_dir(out_dir) -> Path:
    """Create ``out_dir`` (and parents) and return it as a Path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _limit_native_threads(threads: int) -> None:
    """NumPy's BLAS and other OpenMP pools in this kernel to ``threads`` (they read OMP_NUM_THREADS only when they
    start; the runner passes threads as a parameter instead of changing the environment)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:      # scikit-learn brings it; without it the pools keep their size
        return
    threadpool_limits(threads)


def start(out_dir, *, threads: int | None = None, device: str = "auto") -> Path:
    """The set-up every training notebook makes: ``threads`` torch CPU threads (None: torch's default), one line
    naming the device the runs will use and the thread count, and the output folder (created). Returns the folder.

    One thread gives the same numbers on the same CPU model every time (float sums depend on the thread count);
    another CPU model gives numbers within the tolerances of :mod:`semscale_lib.studies.tolerance`."""
    import torch

    from ..training import resolve_device
    if threads:
        torch.set_num_threads(int(threads))
        _limit_native_threads(int(threads))
    count = torch.get_num_threads()
    print(f"device {resolve_device(device)}, {count} torch thread{'s' if count != 1 else ''}")
    return prepare_out_dir(out_dir)


def save_and_show(fig, path, *, show: bool = True) -> None:
    """Save a matplotlib figure as PNG (150 dpi), display it in a notebook (when ``show``), then close it.

    Returns None on purpose: a notebook cell ending with this call shows the figure and nothing else (nbval runs
    cells without input history, so IPython's trailing-``;`` output suppression does not work there)."""
    import matplotlib.pyplot as plt

    from ..plotting import finish_layout
    path = Path(path)
    finish_layout(fig)      # tight layout, with tick labels refitted to the final axes sizes
    fig.savefig(path, dpi=150)
    if show:
        try:
            from IPython.display import display
            display(fig)
        except ImportError:  # pragma: no cover - IPython ships with ipykernel
            pass
    plt.close(fig)


def show_figure(path, *, width: int | None = None):
    """A saved PNG figure for ``IPython.display.display``, embedded once at its full resolution; shown at the
    width of the notebook (``width``: at most that many pixels wide instead). Use this, not :func:`thumbnail`,
    wherever the figure has to be read (several panels, class names)."""
    from IPython.display import Image

    return Image(filename=str(path), width=width)


def thumbnail(path, *, width: int = 800, quality: int = 80) -> bytes:
    """A PNG figure as JPEG bytes at most ``width`` pixels wide — a preview only: multi-panel figures are not
    legible at 800 px (show those with :func:`show_figure`). Display with
    ``IPython.display.Image(data=..., format="jpeg")``."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def fmt(value, decimals: int = 3) -> str:
    """A number for a table: fixed decimals, ``"undefined"`` for NaN/None."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "undefined"
    return f"{float(value):.{decimals}f}"


def markdown_table(frame: pd.DataFrame, *, decimals: int = 3) -> str:
    """A DataFrame as a GitHub markdown table (``DataFrame.to_markdown``): floats with ``decimals``, NaN shown as
    ``undefined``, no index."""
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = [fmt(v, decimals) for v in shown[column]]
        elif not pd.api.types.is_numeric_dtype(shown[column]):   # a "|" or a line break would break the table
            shown[column] = ["undefined" if v is None else str(v).replace("|", "\\|").replace("\n", " ")
                             for v in shown[column]]
    return shown.to_markdown(index=False, disable_numparse=True)


def require_versions(minimums: Mapping[str, str]) -> dict[str, str]:
    """Assert that each package (import name → minimum version) is installed at least at that version
    (``packaging.version``); returns {name: installed version}. Raises AssertionError naming what is too old."""
    installed = {}
    for name, minimum in minimums.items():
        version = getattr(importlib.import_module(name), "__version__", "0")
        installed[name] = version
        assert Version(version) >= Version(minimum), f"{name} {version} is older than the required {minimum}"
    return installed


__all__ = ["fmt", "markdown_table", "prepare_out_dir", "require_versions", "save_and_show", "show_figure", "start",
           "thumbnail", "write_json"]
