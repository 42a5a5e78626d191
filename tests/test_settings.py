"""Environment variables are read in one place (semscale_lib.settings) and mean what its table says."""
from __future__ import annotations

import re

from semscale_lib import paths
from semscale_lib.settings import REPO_ROOT, environment

VARIABLES = ("SEMSCALE_DATA", "SEMSCALE_SPLITS", "SEMSCALE_RUNS", "SEMSCALE_VERIFY_CHECKSUMS", "SEMSCALE_DEBUG",
             "WORLD_SIZE", "LOCAL_RANK")


def test_defaults_when_nothing_is_set(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = environment()
    assert (env.data, env.splits, env.runs) == (REPO_ROOT / "data" / "raw", REPO_ROOT / "data" / "splits",
                                                REPO_ROOT / "runs")
    assert env.verify_checksums is True and env.debug is False and (env.world_size, env.local_rank) == (1, 0)


def test_each_variable_is_read_when_asked(monkeypatch, tmp_path):
    monkeypatch.setenv("SEMSCALE_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("SEMSCALE_RUNS", str(tmp_path / "r"))
    monkeypatch.setenv("SEMSCALE_SPLITS", str(tmp_path / "s"))
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert (paths.data_root(), paths.runs_root(), paths.project_splits_root()) == (tmp_path / "d", tmp_path / "r",
                                                                                    tmp_path / "s")
    assert (environment().world_size, environment().local_rank) == (4, 3)
    for value, checked, debug in (("0", False, False), ("1", True, True), ("", True, False), (" 0 ", False, False)):
        monkeypatch.setenv("SEMSCALE_VERIFY_CHECKSUMS", value)
        monkeypatch.setenv("SEMSCALE_DEBUG", value)
        assert (environment().verify_checksums, environment().debug) == (checked, debug), value


def test_no_other_module_reads_the_environment():
    """Only settings.py reads variables; the runner sets the thread variables of the kernels it starts."""
    readers, allowed = [], ("semscale_lib/settings.py", "semscale_lib/runner/execute.py")
    for source in sorted((REPO_ROOT / "semscale_lib").rglob("*.py")):
        if source.relative_to(REPO_ROOT).as_posix() in allowed:
            continue
        if re.search(r"os\.environ|os\.getenv|getenv\(", source.read_text()):
            readers.append(source.relative_to(REPO_ROOT).as_posix())
    assert readers == []
