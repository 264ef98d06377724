"""The commands messages suggest run as written when pasted: a path the shell would split
(a space) or read (a `$`) is quoted, a plain one is left as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.errors import quoted


@pytest.mark.parametrize(
    ("path", "spelled"),
    [
        ("runs/vae-digits/20261204-1", "runs/vae-digits/20261204-1"),
        ("odd dir/a b/run", "'odd dir/a b/run'"),
        ("cost$1/run", "'cost$1/run'"),
        ("it's/run", "'it'\"'\"'s/run'"),
    ],
)
def test_a_path_is_quoted_only_where_the_shell_needs_it(path: str, spelled: str) -> None:
    assert quoted(Path(path)) == spelled


def test_the_resume_advice_pastes_as_one_argument(tmp_path: Path) -> None:
    from gencompile.lockfile import spec_given
    from gencompile.runtime.training import resume_command

    run = tmp_path / "odd dir" / "a b"
    assert resume_command(run) == f"`gencompile train --resume '{run}'`"
    assert spec_given(Path("my specs/vae.yaml"), locked=False).endswith(
        "train it with `gencompile train 'my specs/vae.yaml'`"
    )
