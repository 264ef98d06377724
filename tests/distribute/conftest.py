"""The family cases of the distribution tests (`family_cases.yaml`), for every test here.

A test that takes `family_case` runs once per case; the `family_cases` fixture holds them
all, with their spec paths resolved, for the child processes that train them. The uneven
cases (`uneven_case`, `uneven_cases`) are family cases trained over whole epochs whose last
batches split unevenly between 2 replicas.
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

# Each uneven case is a family case with a quarter of its data held out, in batches of 16,
# and as many examples as leave the remainders given of the training and the held-out split
# (odd: one replica gets an example more than the other). A last training batch of 1 would
# leave the second replica without an example: the epoch leaves it out, and trains as
# `single_device_steps` steps an epoch on one device do.
QUARTER_HELD_OUT = [
    "data.validation_split=0.25",
    "data.batch_size=16",
    "training.steps_per_epoch=null",
    "training.validation_every_epochs=1",
]
UNEVEN = {  # name -> (family case, size of the data, remainders, single_device_steps)
    "vae_uneven": ("vae", "data.source.n_samples=218", [3, 7], None),
    "gan_uneven": ("gan", "data.source.n_samples=218", [3, 7], None),  # R1, moving average
    # Critic steps, the penalty's interpolation, accuracy cut at the global batch's means.
    "wgan_gp_uneven": ("wgan_gp", "data.source.n_samples=218", [3, 7], None),
    # Timesteps, noise and hidden labels: each replica's rows placed by the step's one split.
    "diffusion_guided_uneven": ("diffusion_guided", "data.source.fraction=0.13", [15, 11], None),
    "flow_uneven": ("flow", "data.source.n_samples=218", [3, 7], None),
    "diffusion_uneven": ("diffusion", "data.source.n_samples=218", [3, 7], None),
    "autoregressive_uneven": ("autoregressive", "data.source.n_samples=380", [3, 11], None),
    "mixture_gradient_uneven": ("mixture_gradient", "data.source.n_samples=218", [3, 7], None),
    # Both stages: the prior's epoch over the 175 training images' codes ends with 15 too.
    "vq_vae_uneven": ("vq_vae", "data.source.fraction=0.13", [15, 11], None),
    "vae_skips_one": ("vae", "data.source.n_samples=172", [1, 11], 8),  # 8 x 16 + 1
}


def _uneven_cases() -> list[dict[str, Any]]:
    family = {case["name"]: case for case in CASES}
    return [
        {
            **family[case],
            "name": name,
            "overrides": [*family[case]["overrides"], size, *QUARTER_HELD_OUT],
            "remainders": remainders,
            "single_device_steps": steps,
        }
        for name, (case, size, remainders, steps) in UNEVEN.items()
    ]


UNEVEN_CASES = _uneven_cases()

# A mixture's steps take a replica's empty slice (its statistics are sums, its means
# masked): 66 examples, 49 to train on and 17 held out, each split ending with a batch of 1
# that leaves the second replica without an example, which the epoch keeps and validation
# takes, as one device does.
VARIATIONAL = "model.algorithm={type: variational, init: random, tol: 1.0e-9}"
NLL_ONLY = "evaluation.metrics=[nll]"  # a variational mixture has no bic or aic
KEEPS_ONE = {  # name -> (family case, overrides of it)
    "mixture_em_keeps_one": ("mixture_em", []),
    "mixture_variational_keeps_one": ("mixture_em", [VARIATIONAL, NLL_ONLY]),
    "mixture_gradient_keeps_one": ("mixture_gradient", []),
}
KEEPS_ONE_CASES = [
    {
        **case,
        "name": name,
        "overrides": [*case["overrides"], *more, "data.source.n_samples=66", *QUARTER_HELD_OUT],
        "remainders": [1, 1],
        "single_device_steps": None,
    }
    for name, (family, more) in KEEPS_ONE.items()
    for case in CASES
    if case["name"] == family
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "family_case" in metafunc.fixturenames:
        metafunc.parametrize("family_case", [case["name"] for case in CASES])
    if "uneven_case" in metafunc.fixturenames:
        metafunc.parametrize("uneven_case", [case["name"] for case in UNEVEN_CASES])
    if "keeps_one_case" in metafunc.fixturenames:
        metafunc.parametrize("keeps_one_case", [case["name"] for case in KEEPS_ONE_CASES])


@pytest.fixture(scope="session")
def family_cases() -> list[dict[str, Any]]:
    return [dict(case) for case in CASES]


@pytest.fixture(scope="session")
def keeps_one_cases() -> list[dict[str, Any]]:
    return [dict(case) for case in KEEPS_ONE_CASES]


@pytest.fixture(scope="session")
def uneven_cases() -> list[dict[str, Any]]:
    return [dict(case) for case in UNEVEN_CASES]
