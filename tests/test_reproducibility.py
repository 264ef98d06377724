"""Recovery and reproducibility: a run killed mid-epoch resumes to the same weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.runs import resume, train

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "vae_digits.yaml"
OVERRIDES = [
    "evaluation.importance_samples=8",
    "training.checkpoint={every_epochs: 1, every_seconds: 0, keep: 3}",  # SIGKILL: no last save
    "model.losses.kl.warmup_epochs=2",  # the warm-up spans the kill
]
EPOCHS = 4


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> str:
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    return train(SPEC, OVERRIDES, epochs=EPOCHS, run_dir=run_dir, quiet=True).record[
        "weights_sha256"
    ]


@pytest.mark.slow  # a killed subprocess, then a resume: about 20 s
def test_run_killed_mid_epoch_resumes_to_identical_weights(
    tmp_path, uninterrupted, killed_run
) -> None:
    run_dir = killed_run(SPEC, tmp_path / "run", OVERRIDES, EPOCHS)
    assert not (run_dir / "metrics.json").exists()
    assert (run_dir / "checkpoints" / "epoch-0002.json").is_file()
    assert not (run_dir / "checkpoints" / "epoch-0003.json").exists()
    assert len((run_dir / "history.csv").read_text().splitlines()) == 1 + 2

    result = resume(run_dir, quiet=True)

    assert result.record["weights_sha256"] == uninterrupted
    assert result.record["epochs"] == EPOCHS  # history.csv holds all four epochs
    assert len((run_dir / "history.csv").read_text().splitlines()) == 1 + EPOCHS


@pytest.mark.slow
def test_interrupted_run_with_default_checkpoints_resumes_to_identical_weights(
    tmp_path, uninterrupted, monkeypatch
) -> None:
    """Checkpoints by time (default: at most one a minute) write none in a short run, but
    Ctrl-C or SIGTERM writes the last finished epoch, and the run resumes from it."""
    import keras

    from gencompile.run_status import RunInterrupted

    class InterruptInEpoch3(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    fit = keras.Model.fit

    def fit_until_interrupted(self, *args, callbacks=(), **kwargs):
        return fit(self, *args, callbacks=[*callbacks, InterruptInEpoch3()], **kwargs)

    run_dir = tmp_path / "run"
    defaults = [o for o in OVERRIDES if not o.startswith("training.checkpoint")]
    monkeypatch.setattr(keras.Model, "fit", fit_until_interrupted)
    with pytest.raises(RunInterrupted):
        train(SPEC, defaults, epochs=EPOCHS, run_dir=run_dir, quiet=True)
    monkeypatch.undo()
    assert [p.name for p in (run_dir / "checkpoints").glob("epoch-*.json")] == ["epoch-0002.json"]

    result = resume(run_dir, quiet=True)

    assert result.record["weights_sha256"] == uninterrupted
    assert len((run_dir / "history.csv").read_text().splitlines()) == 1 + EPOCHS


@pytest.mark.slow
def test_truncated_checkpoint_is_skipped_for_the_one_before(
    tmp_path, uninterrupted, killed_run
) -> None:
    run_dir = killed_run(SPEC, tmp_path / "run", OVERRIDES, EPOCHS)
    newest = run_dir / "checkpoints" / "epoch-0002.weights.h5"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])

    with pytest.warns(UserWarning, match="skipping checkpoint of epoch 2: .*truncated"):
        result = resume(run_dir, quiet=True)

    assert result.record["weights_sha256"] == uninterrupted


def test_resume_without_a_checkpoint_says_so(tmp_path) -> None:
    from gencompile.compiler.project import build
    from gencompile.errors import RunError
    from gencompile.spec import load_spec

    build(load_spec(SPEC), tmp_path / "run")
    with pytest.raises(RunError, match="no usable checkpoint to resume from"):
        resume(tmp_path / "run", quiet=True)


# -- the lock, reproduce and locked rebuilds ---------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    train(SPEC, ["evaluation.importance_samples=8"], epochs=2, run_dir=run_dir, quiet=True)
    return run_dir


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run_dir, tmp_path / "copy"))


def test_lock_pins_the_run(finished) -> None:
    import json

    import yaml

    lock = json.loads((finished / "spec.lock.json").read_text())
    # trained with overrides: the source is the spec they made, as the run's spec.yaml
    assert lock["spec_source"] == (finished / "spec.yaml").read_text()
    source = yaml.safe_load(lock["spec_source"])
    assert source["training"]["epochs"] == 2 and source["evaluation"]["importance_samples"] == 8
    assert source["model"] == yaml.safe_load(SPEC.read_text())["model"]
    pinned = {"tensorflow", "keras", "numpy", "scipy", "scikit-learn"}
    assert set(lock["versions"]) == {"python", "gencompile", *pinned}
    assert len(lock["data_fingerprint"]) == 64 and lock["seed"] == 42
    assert lock["resolved_spec"]["training"]["optimizer"]["beta_2"] == 0.999  # a default
    # The fitted preprocessing: min-max scaling of the digits' grey levels (0..16) to [0, 1].
    statistics = lock["data_statistics"]
    assert statistics["kind"] == "image" and statistics["scale"] == [0.0, 1.0]
    assert statistics["center"] == 0.0 and statistics["factor"] == 1 / 16


@pytest.mark.slow
def test_reproduce_is_identical_then_reports_a_changed_weight_file(
    finished, tmp_path, run_cli
) -> None:
    import h5py

    assert run_cli("reproduce", str(finished), "-o", str(tmp_path / "again"))[0] == 0
    changed = copy_of(finished, tmp_path)
    with h5py.File(changed / "model.weights.h5", "r+") as weights:
        kernels = []
        weights.visititems(lambda n, o: kernels.append(o) if isinstance(o, h5py.Dataset) else None)
        kernels[0][...] = kernels[0][...] + 0.01
    assert run_cli("reproduce", str(changed), "-o", str(tmp_path / "third"))[0] == 1


def test_locked_rebuild_is_exact_and_refuses_drift(finished, tmp_path) -> None:
    import json

    from gencompile.compiler.project import write_lock
    from gencompile.errors import RunError
    from gencompile.files import sha256_file
    from gencompile.lockfile import build_locked

    rebuilt = build_locked(finished, tmp_path / "rebuilt")
    lock = json.loads((finished / "spec.lock.json").read_text())
    for relative, sha in lock["files"].items():
        assert sha256_file(tmp_path / "rebuilt" / relative) == sha, relative
    assert rebuilt.lock == lock

    drifted = copy_of(finished, tmp_path)
    lock["versions"]["tensorflow"] = "2.0.0"
    (drifted / "spec.lock.json").write_text(json.dumps(lock))  # a hand edit: refused as one
    with pytest.raises(RunError, match="its fields no longer match lock_sha256"):
        build_locked(drifted, tmp_path / "edited")
    write_lock(drifted, lock)  # a lock written on another machine: checksummed, drifted
    with pytest.raises(RunError, match=r"tensorflow 2\.0\.0 in the lock, .* --allow-drift"):
        build_locked(drifted, tmp_path / "refused")
    with pytest.warns(UserWarning, match="building despite drift: tensorflow 2.0.0"):
        build_locked(drifted, tmp_path / "allowed", allow_drift=True)

    lock["versions"]["tensorflow"] = json.loads((finished / "spec.lock.json").read_text())[
        "versions"
    ]["tensorflow"]
    lock["data_fingerprint"] = "0" * 64
    write_lock(drifted, lock)
    with pytest.raises(RunError, match="changed since the run: its fingerprint is"):
        build_locked(drifted, tmp_path / "other-data")


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (
            lambda run: (run / "spec.lock.json").write_text(
                (run / "spec.lock.json").read_text().replace('"batch_size": 64', '"batch_size": 9')
            ),
            "was edited by hand: its resolved_spec no longer matches",
        ),
        (
            lambda run: (run / "vae_digits" / "model.py").write_text("# edited\n"),
            "vae_digits/model.py was changed after it was generated",
        ),
        (lambda run: (run / "metrics.json").write_text("{"), "metrics.json is unreadable"),
        (lambda run: (run / "spec.lock.json").write_text("[]"), "was not written by gencompile"),
    ],
    ids=["edited-lock", "edited-model", "corrupt-metrics", "foreign-lock"],
)
def test_tampered_runs_are_refused_with_a_message(finished, tmp_path, tamper, message) -> None:
    from gencompile.errors import RunError
    from gencompile.runs import evaluate

    run_dir = copy_of(finished, tmp_path)
    tamper(run_dir)
    with pytest.raises(RunError, match=message):
        evaluate(run_dir)


def test_a_project_trained_by_hand_reproduces_as_identical(tiny_vae_spec, tmp_path) -> None:
    """`python -m PACKAGE.train` in a built project writes metrics.json (with the data's
    fingerprint) but never the lock: reproduce and evaluate read the fingerprint there, not
    a missing one that made a bit-identical re-run read 'differs'."""
    from gencompile.compiler.project import build
    from gencompile.generated import import_generated, trained_fingerprint
    from gencompile.lockfile import read_lock
    from gencompile.reproduction import reproduce
    from gencompile.runs import evaluate
    from gencompile.spec import load_spec

    project = tmp_path / "project"
    package = build(load_spec(tiny_vae_spec), project).plan.package
    import_generated(project, package).main(["--run-dir", str(project), "--quiet"])
    lock = read_lock(project)
    assert lock["data_fingerprint"] is None  # what a hand run leaves
    assert len(trained_fingerprint(project, lock) or "") == 64
    result = reproduce(project, tmp_path / "again")
    assert [row.name for row in result.rows if not row.same] == []
    evaluate(project)  # the data it trained on: accepted


def test_reproduce_of_an_unfinished_run_says_how_to_finish_it(finished, tmp_path) -> None:
    import json

    from gencompile.errors import RunError
    from gencompile.reproduction import reproduce

    stopped = copy_of(finished, tmp_path)
    (stopped / "metrics.json").unlink()
    status = json.loads((stopped / "status.json").read_text())
    (stopped / "status.json").write_text(json.dumps({**status, "status": "interrupted"}))
    with pytest.raises(
        RunError, match=r"status: interrupted\): finish it with `gencompile train --resume"
    ):
        reproduce(stopped, tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_an_interrupted_reproduction_says_to_reproduce_again(
    finished, tmp_path, monkeypatch
) -> None:
    from gencompile import reproduction
    from gencompile.run_status import RunInterrupted

    def interrupted(directory: Path, *args: object, **kwargs: object) -> None:
        raise RunInterrupted(f"interrupted: {directory} keeps its checkpoint of epoch 1")

    monkeypatch.setattr(reproduction, "train_in", interrupted)
    again = tmp_path / "again"
    with pytest.raises(RunInterrupted) as stopped:
        reproduction.reproduce(finished, again)
    message = str(stopped.value)
    assert f"reproduce it again with `gencompile reproduce {finished}`" in message
    assert f"remove {again} or pass another -o" in message and "train --resume" not in message
