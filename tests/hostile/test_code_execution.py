"""Nothing runs without consent: custom layers (user code) need --allow-custom-code on every
command that could import them, and a run folder can only supply its own verified package.

The custom layer here lives in `canary_layers.py`, which appends a line to `imports.log`
each time it is imported: a refusal must leave that log, and `sys.modules`, untouched.
"""

from __future__ import annotations

import json
import shutil
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from gencompile.errors import RunError

CANARY = '''\
"""A custom layer whose import leaves a trace."""
from pathlib import Path

import keras

with open(Path(__file__).with_name("imports.log"), "a") as log:
    log.write("imported\\n")


@keras.saving.register_keras_serializable(package="canary")
class Scale(keras.layers.Layer):
    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
'''

CUSTOM_VAE = """\
spec_version: 1
name: canary-vae
seed: 3
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
model:
  family: vae
  latent_dim: 2
  encoder:
    layers:
      - {type: dense, units: 16}
      - {type: custom, name: canary, ref: "canary_layers:Scale", args: {factor: 1.0},
         output_shape: [16]}
  decoder: {mlp: [16]}
training:
  epochs: 1
evaluation:
  importance_samples: 4
"""

FLAG = "--allow-custom-code"


@pytest.fixture(scope="module")
def canary_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("canary")
    (folder / "canary_layers.py").write_text(CANARY)
    (folder / "canary_vae.yaml").write_text(CUSTOM_VAE)
    return folder


@pytest.fixture(scope="module")
def custom_run(canary_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch run whose encoder has the canary layer (trained with consent)."""
    from gencompile.runs import train

    sys.path.insert(0, str(canary_dir))
    try:
        run_dir = tmp_path_factory.mktemp("custom") / "run"
        return train(
            canary_dir / "canary_vae.yaml", run_dir=run_dir, quiet=True, allow_custom_code=True
        ).run_dir
    finally:
        sys.path.remove(str(canary_dir))
        sys.modules.pop("canary_layers", None)


@pytest.fixture
def canary(canary_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[types.SimpleNamespace]:
    """The canary importable (so only consent stands in the way) and not yet imported."""
    monkeypatch.syspath_prepend(str(canary_dir))
    sys.modules.pop("canary_layers", None)
    log = canary_dir / "imports.log"
    state = types.SimpleNamespace(
        spec=canary_dir / "canary_vae.yaml",
        imports=lambda: len(log.read_text().splitlines()) if log.exists() else 0,
    )
    yield state
    sys.modules.pop("canary_layers", None)


@pytest.fixture
def custom_copy(custom_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(custom_run, tmp_path / "run"))


def commands(run: Path, spec: Path) -> dict[str, list[str]]:
    """Every command that can import a spec's custom code, run from the test's folder."""
    return {
        "build": ["build", str(spec), "-o", "out"],
        "build-locked": ["build", "--locked", str(run / "spec.lock.json"), "-o", "out"],
        "train": ["train", str(spec), "--runs-dir", "runs", "--quiet"],
        "train-resume": ["train", "--resume", str(run), "--quiet"],
        "reproduce": ["reproduce", str(run), "-o", "out"],
        "sample": ["sample", str(run), "-n", "4", "-o", "samples.png"],
        "evaluate": ["evaluate", str(run)],
        "impute": ["impute", str(run), "--input", "in.csv", "-o", "out.csv"],
        "serve": ["serve", str(run), "--port", "0"],
        "eject": ["eject", str(run), "-o", "out"],
        "score": ["score", str(run), "--split", "heldout", "-o", "scores.csv"],
        "latent": ["latent", str(run), "reconstruct", "-o", "pairs.npz"],
    }


# A spec is refused by the compiler (exit 2, located in the spec); a run by its lock (exit 1).
EXIT = {"build": 2, "train": 2}


@pytest.mark.parametrize("command", list(commands(Path(), Path())))
def test_every_command_refuses_custom_code_without_the_flag(
    command: str, canary, custom_copy: Path, hostile, tmp_path: Path
) -> None:
    (tmp_path / "in.csv").write_text("a,b\n1,\n")
    before = canary.imports()

    outcome = hostile(*commands(custom_copy, canary.spec)[command])

    outcome.assert_refused(EXIT.get(command, 1), "custom layer", "canary", FLAG)
    assert "canary_layers" not in sys.modules
    assert canary.imports() == before  # the user's module never ran


def test_the_refusal_names_the_layer_and_its_code(canary, custom_copy: Path, hostile) -> None:
    outcome = hostile("sample", str(custom_copy), "-o", "samples.png")
    outcome.assert_refused(
        1, "model.encoder.layers[1] (canary) imports canary_layers:Scale", "refused by default"
    )
    assert len((outcome.out + outcome.err).strip().splitlines()) == 1


def test_the_compiler_refusal_is_located_in_the_spec(canary, hostile) -> None:
    outcome = hostile("build", str(canary.spec), "-o", "out")
    outcome.assert_refused(2, "canary_vae.yaml:14:", "model.encoder.layers[1]", FLAG)


def test_build_with_the_flag_writes_the_project(canary, hostile) -> None:
    outcome = hostile("build", str(canary.spec), "-o", "out", FLAG)
    assert outcome.code == 0, outcome.err
    assert {p.split("/")[0] for p in outcome.changed} == {"out"}
    assert "out/canary_vae/model.py" in outcome.changed


def test_build_locked_with_the_flag_rebuilds_the_locked_files(
    canary, custom_copy: Path, hostile, tmp_path: Path
) -> None:
    outcome = hostile("build", "--locked", str(custom_copy / "spec.lock.json"), "-o", "out", FLAG)
    assert outcome.code == 0, outcome.err
    lock = json.loads((custom_copy / "spec.lock.json").read_text())
    assert json.loads((tmp_path / "out" / "spec.lock.json").read_text()) == lock
    assert "from canary_layers import Scale" in (tmp_path / "out/canary_vae/model.py").read_text()


def test_eject_with_the_flag_keeps_the_custom_import(canary, custom_copy: Path, hostile) -> None:
    outcome = hostile("eject", str(custom_copy), "-o", "out", FLAG)
    assert outcome.code == 0, outcome.err
    assert {p.split("/")[0] for p in outcome.changed} == {"out"}
    assert (
        "from canary_layers import Scale"
        in (custom_copy.parent / "out/canary_vae/model.py").read_text()
    )


def test_sample_with_the_flag_imports_the_layer_and_samples(
    canary, custom_copy: Path, hostile
) -> None:
    before = canary.imports()
    outcome = hostile("sample", str(custom_copy), "-n", "4", "-o", "samples.png", FLAG)
    assert outcome.code == 0, outcome.err
    assert "samples.png" in outcome.changed
    assert canary.imports() == before + 1


def test_evaluate_with_the_flag_runs_the_custom_layer(canary, custom_copy: Path, hostile) -> None:
    before = canary.imports()
    outcome = hostile("evaluate", str(custom_copy), "--metrics", "elbo", FLAG)
    assert outcome.code == 0, outcome.err
    assert "elbo" in outcome.out
    assert canary.imports() == before + 1
    # Evaluation is seeded: the same weights rewrite the very same metrics.json.
    assert "run/metrics.json" not in outcome.changed


def test_impute_with_the_flag_gets_past_consent(
    canary, custom_copy: Path, hostile, tmp_path: Path
) -> None:
    (tmp_path / "in.csv").write_text("a,b\n1,\n")
    outcome = hostile("impute", str(custom_copy), "--input", "in.csv", "-o", "out.csv", FLAG)
    # Past consent, the model loads and the CSV is checked against its 64 features.
    outcome.assert_refused(
        1, "has 2 columns; the model was trained on 64 features", allowed=["run/canary_vae/"]
    )


def test_a_subprocess_refuses_before_importing(
    canary, canary_dir: Path, custom_copy: Path, hostile_subprocess, monkeypatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", f"{canary_dir}:{Path.cwd()}")
    before = canary.imports()
    outcome = hostile_subprocess("sample", str(custom_copy), "-o", "samples.png")
    outcome.assert_refused(1, "canary_layers:Scale", FLAG)
    assert canary.imports() == before


# -- a run folder supplies its own verified package, nothing else -------------------------------

SHADOW = """\
from pathlib import Path
Path(__file__).with_name("shadow-ran").write_text("yes")
raise SystemExit("a module dropped into the run folder was imported")
"""


@pytest.mark.parametrize(
    ("name", "command"),
    [
        pytest.param("keras", "train-resume", marks=pytest.mark.slow),
        pytest.param("tensorflow", "train-resume", marks=pytest.mark.slow),
        ("h5py", "sample"),
    ],
)
def test_modules_dropped_into_a_run_folder_are_never_imported(
    name: str, command: str, vae_copy: Path, hostile_subprocess, monkeypatch
) -> None:
    """The run folder used to go first on sys.path while its package was imported: a fresh
    `train --resume` then imported the folder's keras.py instead of Keras."""
    (vae_copy / f"{name}.py").write_text(SHADOW)
    if command == "train-resume":  # a finished run is refused before any import
        status = json.loads((vae_copy / "status.json").read_text())
        (vae_copy / "status.json").write_text(json.dumps({**status, "status": "interrupted"}))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    args = {
        "train-resume": ["train", "--resume", str(vae_copy), "--quiet"],
        "sample": ["sample", str(vae_copy), "-n", "4", "-o", "s.png"],
    }[command]
    outcome = hostile_subprocess(*args, timeout=180)
    assert outcome.code == 0, outcome.err[-2000:]
    assert not (vae_copy / "shadow-ran").exists()
    assert all(p == "s.png" or p.startswith("run/") for p in outcome.changed)


def test_import_generated_refuses_another_package_name(trained_vae: Path) -> None:
    from gencompile.generated import import_generated

    json_module = sys.modules["json"]
    with pytest.raises(RunError, match="holds the generated package tiny_vae, not 'json'"):
        import_generated(trained_vae, "json")
    assert sys.modules["json"] is json_module


def test_import_generated_refuses_a_module_it_did_not_import(trained_vae: Path, monkeypatch):
    from gencompile.generated import import_generated

    foreign = types.ModuleType("tiny_vae")
    foreign.__file__ = "/somewhere/else/tiny_vae/__init__.py"
    monkeypatch.setitem(sys.modules, "tiny_vae", foreign)
    monkeypatch.setitem(sys.modules, "tiny_vae.model", types.ModuleType("tiny_vae.model"))
    # Refused by the lock's name check, or else by import_generated's own guard.
    with pytest.raises(RunError, match=r"already imported from|would shadow the installed module"):
        import_generated(trained_vae, "tiny_vae")
    assert sys.modules["tiny_vae"] is foreign and "tiny_vae.model" in sys.modules


def test_import_generated_refuses_to_shadow_an_installed_module(
    trained_vae: Path, tmp_path: Path, monkeypatch
) -> None:
    from gencompile.generated import import_generated

    installed = tmp_path / "site" / "tiny_vae"
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("raise SystemExit('the installed one was imported')\n")
    monkeypatch.syspath_prepend(str(installed.parent))
    monkeypatch.delitem(sys.modules, "tiny_vae", raising=False)
    with pytest.raises(RunError, match="would shadow the installed module tiny_vae"):
        import_generated(trained_vae, "tiny_vae")
    assert "tiny_vae" not in sys.modules


def test_import_generated_replaces_only_its_own_modules(
    trained_vae: Path, vae_copy: Path, monkeypatch
) -> None:
    from gencompile.generated import import_generated

    first = import_generated(trained_vae, "tiny_vae")
    stranger = types.ModuleType("tiny_vae_tools")
    monkeypatch.setitem(sys.modules, "tiny_vae_tools", stranger)
    second = import_generated(vae_copy, "tiny_vae")
    assert second is not first
    assert Path(second.__file__).is_relative_to(vae_copy.resolve())
    assert sys.modules["tiny_vae_tools"] is stranger  # a prefix, not the package: kept
    assert sys.modules["json"].__name__ == "json"
    assert str(vae_copy.resolve()) not in sys.path


def test_import_generated_names_a_missing_custom_module(custom_copy: Path) -> None:
    from gencompile.generated import import_generated

    sys.modules.pop("canary_layers", None)  # and its folder is not on sys.path
    with pytest.raises(RunError, match="No module named 'canary_layers'"):
        import_generated(custom_copy, "canary_vae", allow_custom_code=True)
    assert "canary_vae" not in sys.modules


def test_the_library_takes_consent_as_an_argument(canary, custom_copy: Path) -> None:
    from gencompile.generated import import_generated
    from gencompile.lockfile import build_locked
    from gencompile.runs import evaluate, resume
    from gencompile.sampling import sample

    calls = {
        "import_generated": lambda: import_generated(custom_copy, "canary_vae"),
        "sample": lambda: sample(custom_copy, 4, custom_copy / "s.png"),
        "evaluate": lambda: evaluate(custom_copy),
        "resume": lambda: resume(custom_copy, quiet=True),
        "build_locked": lambda: build_locked(custom_copy, custom_copy.parent / "out"),
    }
    for name, call in calls.items():
        with pytest.raises(RunError, match=FLAG):
            call()
        assert "canary_layers" not in sys.modules, name


def test_reproduce_with_the_flag_rebuilds_and_retrains_identically(
    canary, custom_copy: Path, hostile
) -> None:
    outcome = hostile("reproduce", str(custom_copy), "-o", "again", FLAG)
    assert outcome.code == 0, outcome.err
    assert "identical" in outcome.out
    assert "again/canary_vae/model.py" in outcome.changed


PLANTED = """\
from pathlib import Path
Path(__file__).parent.parent.joinpath("planted-ran").write_text("yes")
"""


def test_a_planted_pyc_beside_a_verified_source_is_never_run(vae_copy: Path) -> None:
    """Python trusts a .pyc whose header matches its source's mtime and size; gencompile
    compiles the verified source instead, and writes no .pyc into the run folder."""
    import importlib.util
    import os
    import py_compile

    from gencompile.generated import import_generated

    model = vae_copy / "tiny_vae" / "model.py"
    shutil.rmtree(vae_copy / "tiny_vae" / "__pycache__", ignore_errors=True)
    size = model.stat().st_size
    evil = vae_copy.parent / "evil.py"
    evil.write_text(PLANTED + "#" * (size - len(PLANTED) - 1) + "\n")
    assert evil.stat().st_size == size
    os.utime(model, ns=(evil.stat().st_atime_ns, evil.stat().st_mtime_ns))
    py_compile.compile(str(evil), cfile=importlib.util.cache_from_source(str(model)))

    module = import_generated(vae_copy, "tiny_vae", "model")

    assert not (vae_copy / "planted-ran").exists()
    assert hasattr(module, "build_model")
    assert sorted(p.name for p in (vae_copy / "tiny_vae" / "__pycache__").iterdir()) == [
        Path(importlib.util.cache_from_source(str(model))).name  # only the planted one
    ]
