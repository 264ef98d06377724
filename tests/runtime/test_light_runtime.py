"""What a generated project imports, `gencompile.runtime`, needs the runtime alone."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY_FOR_A_PROJECT = ("gencompile.compiler", "gencompile.spec", "jinja2", "typer", "pydantic")


def test_importing_the_runtime_loads_neither_the_compiler_nor_the_spec_language() -> None:
    probe = (
        "import json, sys, gencompile.runtime\n"
        f"heavy = {HEAVY_FOR_A_PROJECT!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_public_api_is_still_at_the_top_level() -> None:
    import gencompile
    from gencompile.runs import train

    assert gencompile.train is train
    assert callable(gencompile.build) and callable(gencompile.load_spec)
