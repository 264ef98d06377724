"""Rebuilding into an earlier build never loses an edit to a generated file: the lock's
hashes show which files were edited, the rebuild is refused naming them, and `--force`
moves them aside into `stale-<time>/` before writing the project again."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "specs" / "vae_digits.yaml")
EDIT = "# my edit\n"


def built(run_cli, folder: Path) -> Path:
    code, _, err = run_cli("build", DIGITS, "-o", str(folder))
    assert code == 0, err
    return folder / "vae_digits" / "model.py"


def test_a_rebuild_over_an_edited_file_is_refused_naming_it(run_cli, tmp_path: Path) -> None:
    model = built(run_cli, tmp_path / "p")
    model.write_text(model.read_text() + EDIT)
    code, _, err = run_cli("build", DIGITS, "-o", str(tmp_path / "p"))
    assert code == 1
    assert err.startswith(f"error: {model}: edited since the earlier build")
    assert "--force" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert model.read_text().endswith(EDIT)  # nothing lost


def test_force_moves_the_edited_file_aside(run_cli, tmp_path: Path) -> None:
    model = built(run_cli, tmp_path / "p")
    generated = model.read_text()
    model.write_text(generated + EDIT)
    code, _, err = run_cli("build", DIGITS, "-o", str(tmp_path / "p"), "--force")
    assert code == 0, err
    assert model.read_text() == generated
    (aside,) = (tmp_path / "p").glob("stale-*/vae_digits/model.py")
    assert aside.read_text() == generated + EDIT
    assert "moved the generated files you edited (vae_digits/model.py) aside" in err
    code, _, err = run_cli("build", DIGITS, "-o", str(tmp_path / "p"))  # a clean rebuild
    assert code == 0, err


def test_an_unedited_rebuild_and_a_spec_rebuilt_from_itself_pass(run_cli, tmp_path) -> None:
    project = tmp_path / "p"
    built(run_cli, project)
    assert run_cli("build", DIGITS, "-o", str(project))[0] == 0
    # the project's own spec.yaml, edited and built from: the rebuild writes the edit again
    spec = project / "spec.yaml"
    spec.write_text(spec.read_text().replace("epochs: 60", "epochs: 61"))
    code, _, err = run_cli("build", str(spec), "-o", str(project))
    assert code == 0, err
    assert "epochs: 61" in spec.read_text()
