"""A spec of one file reached through a symbolic link is copied verbatim, as it is when
named directly: its comments kept, no "Composed by gencompile" header."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.spec import load_spec

SPEC = Path(__file__).resolve().parents[2] / "gencompile" / "specs" / "gan_ring8.yaml"


def test_a_spec_through_a_symlinked_folder_is_copied_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = SPEC.read_text()
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "gan.yaml").write_text(original)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    for given in ("link/gan.yaml", tmp_path / "link" / "gan.yaml", "real/gan.yaml"):
        assert load_spec(given).text == original, given


def test_a_spec_with_overrides_through_a_symlink_is_still_composed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "gan.yaml").write_text(SPEC.read_text())
    (tmp_path / "link").symlink_to(tmp_path / "real")
    text = load_spec(tmp_path / "link" / "gan.yaml", ["training.epochs=2"]).text
    assert text.startswith("# Composed by gencompile from ")
    assert "1 --set override(s) applied" in text and "extends:" not in text
