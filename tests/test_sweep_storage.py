"""A --storage that cannot be used is one line on stderr, never a traceback, without its
password, and leaves no sweep folder behind: a URL SQLAlchemy cannot read, or whose
database or driver is unknown, is refused with the spec checks (exit 2), before the folder
is made; a database that cannot be opened, when the study is opened (exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SWEEP_VAE

SPEC = (
    SWEEP_VAE
    + """\
training:
  epochs: 1
"""
)


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # sweeps/ goes here
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    return path


@pytest.mark.parametrize(
    ("storage", "line"),
    [
        (
            "foo://user:secret@host/db",
            "--storage: foo://user:***@host/db: unknown database 'foo' "
            "(e.g. sqlite:///... or postgresql://user@host/db)",
        ),
        ("notaurl", "--storage: notaurl: not a database URL (e.g. sqlite:////path/to/study.db)"),
    ],
)
def test_a_url_that_names_no_usable_database_is_refused_before_the_folder(
    spec: Path, run_cli, storage: str, line: str
) -> None:
    code, _out, err = run_cli(
        "sweep", str(spec), "--grid", "model.latent_dim=2,3", "--storage", storage
    )
    assert (code, err.splitlines()) == (2, [line])
    assert not Path("sweeps").exists()


def test_a_database_that_cannot_be_opened_is_one_line_and_leaves_no_folder(
    spec: Path, run_cli
) -> None:
    storage = "sqlite:////nonexistent/folder/study.db"
    code, _out, err = run_cli(
        "sweep", str(spec), "--grid", "model.latent_dim=2,3", "--storage", storage
    )
    assert (code, err.splitlines()) == (
        1,
        [
            f"error: --storage {storage}: cannot open the study's database (unable to open "
            "database file); check the URL and that the database can be reached"
        ],
    )
    assert not Path("sweeps/tiny-vae").exists()


def test_a_missing_driver_says_what_to_install(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from gencompile.errors import SpecError
    from gencompile.sweep.plan import check_storage

    monkeypatch.setitem(sys.modules, "MySQLdb", None)  # not installed, wherever this runs
    with pytest.raises(SpecError) as info:
        check_storage("mysql://user:secret@host/db", Path("sweeps/x"))
    assert str(info.value.problems[0]) == (
        "--storage: mysql://user:***@host/db: no driver for mysql is installed "
        "(pip install mysqlclient)"
    )
