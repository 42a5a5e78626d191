"""Installing semscale never replaces a user's torch: pyproject.toml asks for ranges, and the pair this project's
machines use is pinned only in constraints.txt, which the Makefile and environment.yml pass to pip.

The end-to-end check (a fresh venv that already holds another torch and torchvision, then ``pip install -e .``)
needs the package index and a few minutes, so it runs only when asked: ``SEMSCALE_PACKAGING_CHECK='torch==2.13.0
torchvision==0.28.0'`` names what to put there first (the first with its dependencies, the rest without; any
releases ≥ the declared minimums that pip can install on this machine)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {Requirement(line).name: Requirement(line) for line in project["dependencies"]}


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip()] = version.strip()
    return pins


def test_pyproject_asks_for_ranges_and_constraints_pin_the_pair():
    requirements, pins = _requirements(), _constraints()
    for name in ("torch", "torchvision"):
        specifiers = list(requirements[name].specifier)
        assert specifiers and all(s.operator == ">=" for s in specifiers), f"{name}: {requirements[name]}"
        assert Version(pins[name]) in requirements[name].specifier      # the pinned pair satisfies the ranges
    assert set(pins) == {"torch", "torchvision"}


def test_the_makefile_and_conda_file_install_with_the_constraints():
    makefile = (REPO / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line and "-e " in line]
    assert installs and all("-c constraints.txt" in line for line in installs)
    assert re.search(r"^\$\(STAMP\):.*constraints\.txt", makefile, re.M)   # a changed pin re-installs
    pip_section = next(item["pip"] for item in yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"]
                       if isinstance(item, dict))
    assert "-c constraints.txt" in pip_section and not any("==" in entry for entry in pip_section)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SEMSCALE_PACKAGING_CHECK"),
                    reason="set SEMSCALE_PACKAGING_CHECK='torch==X torchvision==Y' to install into a fresh venv (network)")
def test_pip_install_keeps_an_installed_torch(tmp_path):
    first, *others = [Requirement(text) for text in os.environ["SEMSCALE_PACKAGING_CHECK"].split()]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, str(first)], check=True)
    if others:
        subprocess.run([*pip, "--no-deps", *map(str, others)], check=True)
    names = [first.name, *(r.name for r in others)]

    def versions() -> dict[str, str]:
        script = "import sys; from importlib.metadata import version; print(*[version(n) for n in sys.argv[1:]])"
        return dict(zip(names, subprocess.run([python, "-c", script, *names], check=True, capture_output=True,
                                              text=True).stdout.split()))
    before = versions()
    assert before["torch"] != _constraints()["torch"], "choose a torch other than the one constraints.txt pins"
    subprocess.run([*pip, "-e", str(REPO)], check=True)
    assert versions() == before
