"""`build` without `-o` writes `build/<package>` (the spec's name with `-` as `_`), and the
README and `build --help` say so."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_build_writes_build_package_as_help_and_readme_say(
    run_cli, tiny_vae_spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("build", str(tiny_vae_spec))  # its name: tiny-vae
    assert "build/tiny_vae" in out
    assert code == 0, err
    assert (tmp_path / "build" / "tiny_vae" / "spec.lock.json").is_file()
    assert not (tmp_path / "build" / "tiny-vae").exists()
    _, shown, _ = run_cli("build", "--help")
    assert "build/<package>" in " ".join(shown.split()) and "build/<name>" not in shown
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(default `build/<package>`, the spec's `name` with `-` as `_`" in readme
    assert "build/<name>" not in readme
