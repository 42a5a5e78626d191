"""Where semscale keeps data, splits and run outputs.

Every location can be moved with an environment variable (read in :mod:`semscale_lib.settings`) so that an installed copy of the library, a notebook
run from another folder and CI all agree:

- ``SEMSCALE_DATA``  — downloaded / copied raw data (default ``<repo>/data/raw``, git-ignored)
- ``SEMSCALE_SPLITS`` — saved long-tailed index lists (default ``<repo>/data/splits``, committed); a training run
  that draws a split no list there holds saves it in its own folder instead (:func:`splits_folder`)
- ``SEMSCALE_RUNS`` — outputs of training runs and batch runs (default ``<repo>/runs``, git-ignored)
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar
from pathlib import Path

from .settings import environment

_SPLITS_FOLDER: ContextVar[Path | None] = ContextVar("semscale_splits_folder", default=None)


def data_root() -> Path:
    """Folder for raw datasets (created on demand by the fetchers, not here)."""
    return environment().data


def splits_root() -> Path:
    """Folder for saved long-tailed split index files: :func:`project_splits_root`, or inside
    :func:`splits_folder` the folder it names."""
    folder = _SPLITS_FOLDER.get()
    return folder if folder is not None else project_splits_root()


def project_splits_root() -> Path:
    """The project's folder of split index files (``SEMSCALE_SPLITS``, default ``<repo>/data/splits``)."""
    return environment().splits


@contextlib.contextmanager
def splits_folder(folder):
    """Within the block (this thread or task only), :func:`splits_root` is ``folder``: a training run reads and
    writes the split it draws in its own folder, not in the project's."""
    token = _SPLITS_FOLDER.set(Path(folder))
    try:
        yield Path(folder)
    finally:
        _SPLITS_FOLDER.reset(token)


def runs_root() -> Path:
    """Folder under which training runs and batch runs write their outputs."""
    return environment().runs


def claim_output_dir(path, *, force: bool = False, what: str = "output folder", hint: str = "",
                     create: bool = True) -> Path:
    """Make ``path`` the folder an output is written to, refusing anything that would overwrite other work.

    Refused (ValueError, naming ``what`` and the path): an empty path (``""`` would mean the current folder), an
    existing file, and an existing folder that is not empty unless ``force`` (then the files written replace
    same-named ones; nothing is ever deleted). ``hint`` is appended to the non-empty message. Otherwise the folder is
    created (with its parents; only checked when ``create`` is False, for a caller that creates it once its inputs
    are known to be good) and returned.
    """
    if path is None or not str(path).strip():
        raise ValueError(f"{what} must name a folder, got an empty path {'' if path is None else str(path)!r}")
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what} {folder} is an existing file, not a folder; choose a folder name")
    if folder.is_dir() and not force:
        entries = sorted(p.name for p in folder.iterdir())
        if entries:
            shown = ", ".join(entries[:3]) + (f", … ({len(entries)} entries)" if len(entries) > 3 else "")
            raise ValueError(f"{what} {folder} is not empty (holds {shown}); choose a new or empty folder{hint}, or "
                             "add --force (force=True) to write into it: same-named files are replaced, nothing "
                             "is deleted")
    if not create:
        parent = next((p for p in folder.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise ValueError(f"{what} {folder} cannot be created: a part of the path is a file, not a folder")
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a parent is a file
        raise ValueError(f"{what} {folder} cannot be created: a part of the path is a file, not a folder") from None
    return folder
