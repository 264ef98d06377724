"""The head-to-head speed benchmarks run the hand-written reference with as many training
steps per compiled call as the generated model (`steps_per_execution: auto`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))  # the script imports `harness`
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))  # a spec named like the script must stay loadable
    return module


@pytest.mark.parametrize(("name", "epochs"), [("vae_digits", 60), ("flow_moons", 300)])
def test_reference_runs_the_generated_steps_per_call(
    name: str, epochs: int, tmp_path: Path
) -> None:
    bench = _script(name)
    gen = bench.build_generated(tmp_path / name, [])
    generated = bench.generated_contender(gen, 42, epochs)
    extra = (0,) if name == "vae_digits" else ()  # its KL warm-up epochs
    reference = bench.reference_contender(gen, 42, epochs, *extra)
    per_call = int(generated.model.steps_per_execution)
    assert per_call > 1  # the default budget is long enough for `auto` to batch steps
    assert int(reference.model.steps_per_execution) == per_call


def test_diffusion_solvers_reuses_only_a_run_of_the_same_spec_and_budget(tmp_path: Path) -> None:
    """A run left in --work by a 2-epoch smoke call is not scored as the 400-epoch model."""
    import json

    from gencompile.compiler.project import build
    from gencompile.spec import load_spec

    solvers = _script("diffusion_solvers")
    swiss = next(d for d in solvers.DATASETS if d.key == "swissroll")
    spec = solvers.ROOT / "specs" / swiss.spec
    smoke = ("evaluation.metrics=[denoising_loss]", "training.epochs=2")
    run_dir = tmp_path / Path(swiss.spec).stem
    build(load_spec(spec, list(smoke)), run_dir)  # the lock a 2-epoch train leaves
    (run_dir / "status.json").write_text(json.dumps({"status": "finished"}))
    with pytest.raises(SystemExit, match=r"training\.epochs 2, wanted 400; move it away"):
        solvers.train_once(swiss, tmp_path, None)
    solvers.harness.check_reused(run_dir, spec, smoke)  # the same spec and budget: reused


def test_whole_process_report_says_which_quality_columns_differ_by_design() -> None:
    """The flow and char-LSTM scripts start from another initialisation than the specs: the
    report says so instead of letting the gap pass for seed noise."""
    import argparse

    whole = _script("whole_process")
    vae = [whole.Run(1.0, 1.0, {"iwae_nll": 24.0, "elbo": -24.0})]
    flow = [whole.Run(10.0, 9.0, {"nll": 1.0}), whole.Run(11.0, 9.5, {"nll": 1.2})]
    results = [
        whole.Result(whole.FAMILIES["vae"], 2, vae, vae),
        whole.Result(whole.FAMILIES["flow"], 2, flow[:1], flow[1:]),
    ]
    args = argparse.Namespace(argv=[], rounds=1)
    text = whole.render(results, args, ["m", "m"], "compiled")
    assert "- flow: quality not like for like: the script's coupling heads start at zeros" in text
    assert "- vae: quality not like for like" not in text
    assert whole.FAMILIES["charlm"].differs.startswith("the script's output bias starts at zero")


def test_workers_runs_every_configuration_each_round_in_rotating_order() -> None:
    """workers.py no longer times each configuration once, one after another."""
    workers = _script("workers")
    seen: list[str] = []
    speed = {"1 process, 1 thread": 1.0, "1 process, 2 threads": 2.0}

    def measure(name: str) -> dict[str, float]:
        seen.append(name)
        return {"rate": speed.get(name, 4.0) * len(seen)}

    found = workers.in_rounds(measure, rounds=3)
    a, b, c = workers.CONFIGS
    assert seen == [a, b, c, b, c, a, c, a, b]
    assert {name: len(runs) for name, runs in found.items()} == {a: 3, b: 3, c: 3}
    ratios = workers.round_ratios(found, "rate", c, a)
    assert ratios == [4.0 * 3 / 1, 4.0 * 5 / 6, 4.0 * 7 / 8]
    assert workers.ratio_text(ratios) == "3.50x (per round 12.00, 3.33, 3.50)"
