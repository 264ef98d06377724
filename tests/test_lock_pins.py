"""A lock records, and a build pins, every library that decides trained weights or numbers:
TensorFlow, Keras, NumPy, SciPy (a flow's LU init, FID's square root) and scikit-learn
(k-means starts, built-in data, metrics). `build --locked` (and so `reproduce` and
`--resume`) refuses another installed version of each; a lock written before SciPy and
scikit-learn were recorded is not refused for them."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from gencompile import lockfile
from gencompile.compiler.project import write_lock
from gencompile.lock_format import installed_versions
from gencompile.lockfile import read_lock

SPEC = Path(__file__).resolve().parents[1] / "specs" / "gmm_moons.yaml"  # k-means started
ADDED = ("scipy", "scikit-learn")


@pytest.fixture
def built(tmp_path: Path, run_cli) -> Path:
    code, _, err = run_cli("build", str(SPEC), "-o", str(tmp_path / "built"))
    assert code == 0, err
    return tmp_path / "built"


def installed_scikit_learn(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    """This machine, as `version_drift` sees it, with another scikit-learn installed."""
    others = {**installed_versions(), "scikit-learn": version}
    monkeypatch.setattr(lockfile, "installed_versions", lambda: others)


def test_the_lock_and_the_project_pin_scipy_and_scikit_learn(built: Path) -> None:
    versions = read_lock(built)["versions"]
    pyproject = (built / "pyproject.toml").read_text()
    for name in ADDED:
        assert versions[name] == metadata.version(name)
        assert f'"{name}=={metadata.version(name)}"' in pyproject


def test_another_scikit_learn_is_refused_by_build_locked(
    built: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed_scikit_learn(monkeypatch, "0.1")
    code, _, err = run_cli(
        "build", "--locked", str(built / "spec.lock.json"), "-o", str(tmp_path / "x")
    )
    assert code == 1
    assert err == (
        f"error: this machine differs from the lock: scikit-learn "
        f"{metadata.version('scikit-learn')} in the lock, 0.1 installed; install the locked "
        "versions, or pass --allow-drift to build anyway\n"
    )


def test_a_lock_from_before_they_were_recorded_still_builds(
    built: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = read_lock(built)
    older = {k: v for k, v in lock["versions"].items() if k not in ADDED}
    write_lock(built, {**lock, "versions": older})
    installed_scikit_learn(monkeypatch, "0.1")  # not recorded, so not compared
    code, _, err = run_cli(
        "build", "--locked", str(built / "spec.lock.json"), "-o", str(tmp_path / "again")
    )
    assert (code, err) == (0, "")
    assert "scikit-learn" not in read_lock(tmp_path / "again")["versions"]


def test_eject_pins_them_as_the_lock_recorded() -> None:
    from gencompile.eject import requirements

    versions = {"python": "3", "gencompile": "0", "scipy": "1.2.3", "scikit-learn": "4.5.6"}
    pins = requirements({"versions": versions}, {"scipy", "scikit-learn"})
    assert pins == ["scikit-learn==4.5.6", "scipy==1.2.3"]
