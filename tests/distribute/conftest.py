"""The family cases of the distribution tests (`family_cases.yaml`), for every test here.

A test that takes `family_case` runs once per case; the `family_cases` fixture holds them
all, with their spec paths resolved, for the child processes that train them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

SPECS = Path(__file__).resolve().parents[2] / "specs"
SMALL = ["training.epochs=1", "training.steps_per_epoch=3"]  # what a case may override


def _load_cases() -> list[dict[str, Any]]:
    cases = yaml.safe_load(Path(__file__).with_name("family_cases.yaml").read_text())
    return [
        {**case, "spec": str(SPECS / case["spec"]), "overrides": [*SMALL, *case["overrides"]]}
        for case in cases
    ]


CASES = _load_cases()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "family_case" in metafunc.fixturenames:
        metafunc.parametrize("family_case", [case["name"] for case in CASES])


@pytest.fixture(scope="session")
def family_cases() -> list[dict[str, Any]]:
    return [dict(case) for case in CASES]
