"""Continuing a finished run (`train --resume RUN --epochs N`) equals one run of N epochs.

The equality is checked on the final weights, the held-out metrics and every value of
history.csv; the refusals (no more epochs, another spec, an unfinished or early-stopped
run) before anything is built or trained.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pytest

from gencompile.cli import main
from gencompile.continuation import differences, with_epochs
from gencompile.errors import RunError
from gencompile.lockfile import read_lock
from gencompile.runs import resume, train

# A learning-rate warm-up of 10 steps, then an exponential decay: the digits' 7 steps an
# epoch put the warm-up across the continuation, which must go on counting the optimizer's
# steps where epoch 1 stopped. The KL weight's warm-up over 2 epochs spans it too.
VAE = """\
spec_version: 1
name: cont-vae
seed: 3
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: bernoulli}
  losses: {kl: {warmup_epochs: 2}}
training:
  epochs: 1
  optimizer: {type: adam, learning_rate: 0.01}
  schedule: {type: exponential_decay, decay_steps: 5, decay_rate: 0.9, warmup_steps: 10}
  checkpoint: {every_epochs: 1, keep: 2}
evaluation:
  metrics: [elbo]
output:
  samples: {count: 16, format: png}
"""

GAN = """\
spec_version: 1
name: cont-gan
seed: 5
data:
  source: {type: builtin, name: ring8, n_samples: 640}
  preprocessing: {standardize: true}
  batch_size: 64
model:
  family: gan
  latent_dim: 2
  generator: {mlp: [16]}
  discriminator: {mlp: [16]}
  gradient_penalty: {type: r1, weight: 1.0}
  ema: 0.9
training:
  epochs: 1
  checkpoint: {every_epochs: 1, keep: 2}
evaluation:
  metrics: [energy_distance]
  num_samples: 200
output:
  samples: {count: 16, format: npz}
"""


def write(folder: Path, text: str, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def history(run_dir: Path) -> str:
    return (run_dir / "history.csv").read_text()


# A logged loss is a mean over the batch that can differ by an ulp between two fresh runs
# of one spec in one process (epoch 1 of two uninterrupted VAE runs did here), while its
# terms and the weights do not: its gradient does not depend on the summation order.
LOGGED_LOSS_ULPS = 2**-22  # relative: two float32 ulps


def assert_same_history(mine: Path, theirs: Path) -> None:
    """The same epochs and columns, every value equal (a logged loss to two ulps)."""
    from gencompile.runtime.history_file import read_rows as read_history_rows

    rows, expected = (
        read_history_rows(mine / "history.csv"),
        read_history_rows(theirs / "history.csv"),
    )
    assert [row.keys() for row in rows] == [row.keys() for row in expected]
    assert len(rows) == len(expected) > 1
    for row, other in zip(rows, expected, strict=True):
        for key, value in row.items():
            if key.endswith("loss") and value != other[key]:
                assert math.isclose(float(value), float(other[key]), rel_tol=LOGGED_LOSS_ULPS)
            else:
                assert value == other[key], (row["epoch"], key)


# -- without TensorFlow ------------------------------------------------------------------------


def test_differences_name_every_changed_leaf() -> None:
    old = {"training": {"epochs": 2, "optimizer": {"learning_rate": 0.01}}, "seed": 3}
    new = {"training": {"epochs": 5, "optimizer": {"learning_rate": 0.02}}, "seed": 3}
    assert differences(old, new) == [
        ("training.epochs", 2, 5),
        ("training.optimizer.learning_rate", 0.01, 0.02),
    ]
    assert differences({"a": [1, 2]}, {"a": [1, 2, 3]}) == [("a", [1, 2], [1, 2, 3])]
    assert differences({"a": 1}, {"a": 1.0}) == [("a", 1, 1.0)]  # a type change counts


def test_em_grows_its_iterations_with_the_epochs() -> None:
    lock = {
        "resolved_spec": {
            "training": {"epochs": 4},
            "model": {"family": "mixture", "algorithm": {"type": "em", "max_iter": 4}},
        }
    }
    spec = with_epochs(lock, 9)
    assert spec["training"]["epochs"] == 9
    assert spec["model"]["algorithm"]["max_iter"] == 9
    assert lock["resolved_spec"]["training"]["epochs"] == 4  # the lock is not touched


# -- a VAE with a learning-rate warm-up --------------------------------------------------------


@pytest.fixture(scope="module")
def vae_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A one-epoch run (kept untouched), its continuation to 3 epochs, a 3-epoch run."""
    folder = tmp_path_factory.mktemp("vae")
    spec = write(folder, VAE)
    first = train(spec, run_dir=folder / "first", quiet=True).run_dir
    continued = Path(shutil.copytree(first, folder / "continued"))
    command = ["gencompile", "train", "--resume", str(continued), "--epochs", "3", "--quiet"]
    with pytest.MonkeyPatch.context() as patch:  # the command line, as a user types it
        patch.setattr(sys, "argv", command)
        try:
            main()
        except SystemExit as done:
            assert done.code in (0, None)
    train(spec, epochs=3, run_dir=folder / "whole", quiet=True)
    return {"spec": spec, "first": first, "continued": continued, "whole": folder / "whole"}


def test_continued_vae_equals_an_uninterrupted_run(vae_runs: dict[str, Path]) -> None:
    continued = json.loads((vae_runs["continued"] / "metrics.json").read_text())
    whole = json.loads((vae_runs["whole"] / "metrics.json").read_text())
    assert continued["weights_sha256"] == whole["weights_sha256"]
    assert continued["metrics"] == whole["metrics"]
    assert continued["epochs"] == 3
    # history.csv kept epoch 1 and appended 2 and 3: every value equals the whole run's.
    assert_same_history(vae_runs["continued"], vae_runs["whole"])
    assert len(history(vae_runs["continued"]).splitlines()) == 1 + 3


def test_continuation_is_a_new_lock_revision(vae_runs: dict[str, Path]) -> None:
    before = read_lock(vae_runs["first"])
    after = read_lock(vae_runs["continued"])
    assert after["resolved_spec"]["training"]["epochs"] == 3
    assert after["resolved_spec_sha256"] == read_lock(vae_runs["whole"])["resolved_spec_sha256"]
    [revision] = after["revisions"]
    assert revision["revision"] == 2
    assert (revision["epochs_before"], revision["epochs_after"]) == (1, 3)
    assert revision["previous_lock_sha256"] == before["lock_sha256"]
    assert after["data_fingerprint"] == before["data_fingerprint"]
    # The generated project is rebuilt for 3 epochs: train.py's default says so.
    package = vae_runs["continued"] / "cont_vae" / "train.py"
    assert "'epochs': 3" in package.read_text().replace('"', "'")
    report = (vae_runs["continued"] / "report.md").read_text()
    assert "3 epochs" in report and "Continued: 1 -> 3 epochs" in report
    status = json.loads((vae_runs["continued"] / "status.json").read_text())
    assert status["status"] == "finished"


def test_the_continued_runs_spec_trains_the_run(vae_runs: dict[str, Path], tmp_path: Path) -> None:
    """spec.yaml (and the lock's spec_source) give 3 epochs, with a header saying how; the
    lock still rebuilds, and a second continuation rewrites the header."""
    from gencompile.compiler.lower import lower
    from gencompile.continuation import CONTINUED
    from gencompile.lock_format import sha256_text
    from gencompile.lockfile import build_locked
    from gencompile.spec import load_spec

    run = Path(shutil.copytree(vae_runs["continued"], tmp_path / "run"))
    lock = read_lock(run)
    text = (run / "spec.yaml").read_text()
    assert text == lock["spec_source"] and sha256_text(text) == lock["spec_sha256"]
    header, body = text.split("\n", 1)
    assert header.startswith(CONTINUED) and "1 epoch trained, then on to 3" in header
    assert body == VAE.replace("  epochs: 1\n", "  epochs: 3\n")
    assert lower(load_spec(run / "spec.yaml")).resolved_spec == lock["resolved_spec"]
    rebuilt = build_locked(run / "spec.lock.json", tmp_path / "rebuilt")
    assert (rebuilt.directory / "spec.yaml").read_text() == text
    resume(run, quiet=True, epochs=4)
    again = (run / "spec.yaml").read_text()
    assert again.count(CONTINUED) == 1 and "3 epochs trained, then on to 4" in again
    assert again.split("\n", 1)[1] == VAE.replace("  epochs: 1\n", "  epochs: 4\n")


def test_no_more_epochs_is_refused_saying_how_many_it_has(
    vae_runs: dict[str, Path], tmp_path: Path
) -> None:
    run = Path(shutil.copytree(vae_runs["continued"], tmp_path / "run"))
    lock_before = (run / "spec.lock.json").read_bytes()
    for epochs in (2, 3):
        with pytest.raises(RunError, match="already has 3 epochs: --epochs is the new total"):
            resume(run, quiet=True, epochs=epochs)
    assert (run / "spec.lock.json").read_bytes() == lock_before


def test_another_spec_is_refused_with_each_difference(
    vae_runs: dict[str, Path], tmp_path: Path, run_cli
) -> None:
    run = Path(shutil.copytree(vae_runs["first"], tmp_path / "run"))
    lock_before = (run / "spec.lock.json").read_bytes()
    changed = write(tmp_path, VAE.replace("latent_dim: 2", "latent_dim: 3"), "other.yaml")

    code, _, err = run_cli(
        "train",
        str(changed),
        "--resume",
        str(run),
        "--epochs",
        "3",
        "--set",
        "training.optimizer.learning_rate=0.02",
        "--quiet",
    )

    assert code == 1
    assert "differs in 2 fields besides training.epochs" in err
    assert "model.latent_dim: 2 in the run, 3 given" in err
    assert "training.optimizer.learning_rate: 0.01 in the run, 0.02 given" in err
    assert (run / "spec.lock.json").read_bytes() == lock_before


def test_the_runs_own_spec_file_is_accepted_as_the_spec(
    vae_runs: dict[str, Path], tmp_path: Path
) -> None:
    """Restating the spec is no change; its epochs (1) are not more than the run has."""
    run = Path(shutil.copytree(vae_runs["first"], tmp_path / "run"))
    with pytest.raises(RunError, match="already has 1 epoch:"):
        resume(run, quiet=True, spec=vae_runs["spec"])


def test_an_unfinished_run_is_finished_first(vae_runs: dict[str, Path], tmp_path: Path) -> None:
    run = Path(shutil.copytree(vae_runs["first"], tmp_path / "run"))
    (run / "status.json").write_text(json.dumps({"status": "interrupted"}))
    with pytest.raises(RunError, match=r"finish it first with `gencompile train --resume"):
        resume(run, quiet=True, epochs=3)


def test_a_run_without_its_last_checkpoint_is_refused(
    vae_runs: dict[str, Path], tmp_path: Path
) -> None:
    run = Path(shutil.copytree(vae_runs["first"], tmp_path / "run"))
    (run / "checkpoints" / "epoch-0001.json").unlink()
    with pytest.raises(RunError, match=r"no checkpoint of its last epoch \(1\)"):
        resume(run, quiet=True, epochs=3)


def test_a_finished_run_checkpointed_before_its_last_epoch_is_no_early_stop(
    vae_runs: dict[str, Path], tmp_path: Path
) -> None:
    """Checkpoints by time can end before the last epoch: such a run trained all its epochs
    (it did not stop early), and its damaged final files are written again by training
    the rest from the checkpoint, to the same weights."""
    run = Path(shutil.copytree(vae_runs["continued"], tmp_path / "run"))
    for file in (run / "checkpoints").glob("epoch-0003.*"):
        file.unlink()  # newest checkpoint: epoch 1 of 3
    with pytest.raises(RunError, match=r"has already finished its 3 epochs; pass --epochs M"):
        resume(run, quiet=True)
    record = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text('{"epochs": ')
    repaired = resume(run, quiet=True)
    assert repaired.record["weights_sha256"] == record["weights_sha256"]
    assert repaired.record["epochs"] == 3


def test_an_early_stopped_run_is_refused(vae_runs: dict[str, Path], tmp_path: Path) -> None:
    run = Path(shutil.copytree(vae_runs["continued"], tmp_path / "run"))
    record = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps(dict(record, epochs=2)))
    with pytest.raises(RunError, match="stopped after 2 of its 3 epochs"):
        resume(run, quiet=True, epochs=5)


# -- slower: a GAN, EM, a cosine schedule, reproduce -------------------------------------------


@pytest.mark.slow
def test_continued_gan_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    """Two optimizers, R1 and the generator's EMA: all of it carries on."""
    spec = write(tmp_path, GAN)
    train(spec, run_dir=tmp_path / "continued", quiet=True)
    continued = resume(tmp_path / "continued", quiet=True, epochs=3)
    whole = train(spec, epochs=3, run_dir=tmp_path / "whole", quiet=True)
    assert continued.record["weights_sha256"] == whole.record["weights_sha256"]
    assert continued.metrics == whole.metrics
    assert_same_history(tmp_path / "continued", tmp_path / "whole")


@pytest.mark.slow
def test_continued_em_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    """EM's epochs are its iterations: continuing raises max_iter with them."""
    spec = Path(__file__).resolve().parents[1] / "specs" / "gmm_moons.yaml"
    overrides = ["data.batch_size=256", "model.algorithm.tol=0.0"]
    train(spec, overrides, epochs=2, run_dir=tmp_path / "continued", quiet=True)
    continued = resume(tmp_path / "continued", quiet=True, epochs=4)
    whole = train(spec, overrides, epochs=4, run_dir=tmp_path / "whole", quiet=True)
    assert continued.record["weights_sha256"] == whole.record["weights_sha256"]
    assert continued.metrics == whole.metrics
    assert_same_history(tmp_path / "continued", tmp_path / "whole")


@pytest.mark.slow
def test_converged_em_is_refused(tmp_path: Path) -> None:
    spec = Path(__file__).resolve().parents[1] / "specs" / "gmm_moons.yaml"
    overrides = ["data.batch_size=256", "model.algorithm.tol=0.01"]  # converges at epoch 3
    run = train(spec, overrides, epochs=5, run_dir=tmp_path / "run", quiet=True).run_dir
    with pytest.raises(RunError, match=r"stopped after 3 of its 5 epochs \(EM converged"):
        resume(run, quiet=True, epochs=8)
    # Without --epochs: nothing to resume (not "its 5 epochs; pass --epochs M (> 5)").
    with pytest.raises(RunError, match=r"has already finished: it stopped after 3 of its 5 "):
        resume(run, quiet=True)
    # Its damaged metrics.json cannot be written again by a resume, which would iterate on.
    weights = (run / "model.weights.h5").read_bytes()
    (run / "metrics.json").write_text('{"metrics": ')
    with pytest.raises(RunError, match=r"a resume would train on, so they cannot be written"):
        resume(run, quiet=True)
    assert (run / "model.weights.h5").read_bytes() == weights
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 3


@pytest.mark.slow
def test_cosine_continuation_warns_and_reproduces_by_replaying_it(tmp_path: Path) -> None:
    """A cosine decay is sized to the total: the continuation is not the uninterrupted run,
    but `reproduce` replays it (1 epoch, then on to 3) to the same weights."""
    from gencompile.reproduction import reproduce

    cosine = VAE.replace(
        "exponential_decay, decay_steps: 5, decay_rate: 0.9, warmup_steps: 10", "cosine_decay"
    )
    spec = write(tmp_path, cosine)
    train(spec, run_dir=tmp_path / "run", quiet=True)
    with pytest.warns(UserWarning, match="cosine_decay.*differs from an uninterrupted 3-epoch"):
        continued = resume(tmp_path / "run", quiet=True, epochs=3)
    whole = train(spec, epochs=3, run_dir=tmp_path / "whole", quiet=True)
    assert continued.record["weights_sha256"] != whole.record["weights_sha256"]

    again = reproduce(tmp_path / "run", tmp_path / "again")

    assert again.identical
    assert_same_history(tmp_path / "again", tmp_path / "run")


def test_a_revision_chain_that_does_not_follow_is_refused(
    vae_runs: dict[str, Path], tmp_path: Path
) -> None:
    """Even with its checksum recomputed, a lock whose revisions skip epochs is no lock
    gencompile wrote."""
    from gencompile.compiler.project import write_lock

    run = Path(shutil.copytree(vae_runs["continued"], tmp_path / "run"))
    lock = read_lock(run)
    lock["revisions"][0]["epochs_after"] = 5  # the resolved spec trains 3
    write_lock(run, lock)
    with pytest.raises(RunError, match="its last revision ends at 5 epochs but its resolved_spec"):
        read_lock(run)


def stop_in_epoch_3(
    monkeypatch: pytest.MonkeyPatch, error: type[BaseException], number: int = 3
) -> None:
    """Make keras.Model.fit raise `error` when epoch 3 (or `number`) begins."""
    import keras

    class StopInEpoch3(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == number - 1:
                raise error(f"stopped in epoch {number}")

    fit = keras.Model.fit

    def fit_until_stopped(self, *args, callbacks=(), **kwargs):
        return fit(self, *args, callbacks=[*callbacks, StopInEpoch3()], **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit_until_stopped)


FINISHED_FILES = ("spec.lock.json", "model.weights.h5", "metrics.json", "cont_vae/train.py")


def finished_files(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in FINISHED_FILES}


def assert_finished_run_in_use(run: Path, before: dict[str, bytes], how: str, capsys) -> None:
    """The run is its finished 1-epoch training, byte for byte, and sample and evaluate use
    it, saying in one line that the continuation to 3 epochs stopped and how to go on."""
    from gencompile.runs import evaluate
    from gencompile.sampling import sample

    assert finished_files(run) == before
    pending = read_lock(run / "checkpoints" / "continuation")
    assert pending["revisions"][0]["epochs_after"] == 3
    capsys.readouterr()
    sample(run, 4, run / "drawn.npz")
    note = (
        f"note: {run}: a continuation to 3 epochs {how}; using its finished training of 1 "
        f"epoch (continue with `gencompile train --resume {run}`, or give it up with "
        f"`gencompile train --resume {run} --discard-continuation`)"
    )
    assert capsys.readouterr().err.strip() == note
    results = evaluate(run)
    assert capsys.readouterr().err.strip() == note
    assert results == json.loads(before["metrics.json"])["metrics"]
    assert (run / "spec.lock.json").read_bytes() == before["spec.lock.json"]


@pytest.mark.slow
def test_an_interrupted_continuation_resumes_to_the_uninterrupted_run(
    vae_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Ctrl-C in epoch 3 of a continuation from 1 to 3 leaves the finished 1-epoch run in
    use, as it was; `--resume RUN` then finishes the continuation."""
    from gencompile.run_status import RunInterrupted

    run = Path(shutil.copytree(vae_runs["first"], tmp_path / "run"))
    before = finished_files(run)
    stop_in_epoch_3(monkeypatch, KeyboardInterrupt)
    with pytest.raises(RunInterrupted) as stopped:
        resume(run, quiet=True, epochs=3)
    monkeypatch.undo()
    assert_finished_run_in_use(run, before, "was interrupted at epoch 2", capsys)
    assert "until then sample and evaluate use its finished training of 1" in str(stopped.value)
    with pytest.raises(RunError, match="has a continuation to 3 epochs that has not finished"):
        resume(run, quiet=True, epochs=5)

    finished = resume(run, quiet=True)

    whole = json.loads((vae_runs["whole"] / "metrics.json").read_text())
    assert finished.record["weights_sha256"] == whole["weights_sha256"]
    assert_same_history(run, vae_runs["whole"])
    assert read_lock(run)["revisions"][0]["epochs_after"] == 3
    assert "'epochs': 3" in (run / "cont_vae" / "train.py").read_text().replace('"', "'")
    assert not (run / "checkpoints" / "continuation").exists()
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "finished" and status["finished_revision"] is None


@pytest.mark.slow
def test_a_failed_continuation_leaves_the_finished_run_in_use(
    vae_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A continuation that fails (NaN, an error) can leave the run as it was for good."""
    from gencompile.reproduction import reproduce

    run = Path(shutil.copytree(vae_runs["first"], tmp_path / "run"))
    before = finished_files(run)
    stop_in_epoch_3(monkeypatch, RuntimeError)
    with pytest.raises(RuntimeError, match="stopped in epoch 3"):
        resume(run, quiet=True, epochs=3)
    monkeypatch.undo()
    assert json.loads((run / "status.json").read_text())["status"] == "failed"
    how = "failed (see status.json; its newest checkpoint is of epoch 2)"  # epoch 2 kept
    assert_finished_run_in_use(run, before, how, capsys)
    assert reproduce(run, tmp_path / "again").identical  # the finished 1-epoch run

    finished = resume(run, quiet=True)

    whole = json.loads((vae_runs["whole"] / "metrics.json").read_text())
    assert finished.record["weights_sha256"] == whole["weights_sha256"]


# -- giving a continuation up: --discard-continuation ------------------------------------------


def summary_steps(run: Path) -> set[int]:
    """The steps (epochs) of every summary in the run's TensorBoard event files."""
    import tensorflow as tf

    from gencompile.runtime.tensorboard import event_files, read_records

    steps = set()
    for path in event_files(run / "tensorboard"):
        for record in read_records(path)[0]:
            event = tf.compat.v1.Event.FromString(record)
            if event.HasField("summary"):
                steps.add(event.step)
    return steps


def test_a_discarded_continuation_leaves_the_finished_run_to_continue_anew(
    vae_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, run_cli
) -> None:
    """A continuation from 1 to 5 epochs, interrupted in epoch 4, resumed and interrupted
    in epoch 5 (its checkpoints of epochs 3 and 4 pruned epoch 1's), is given up: the run is
    its finished 1-epoch training byte for byte, in use without a note, and continues to 3
    epochs as an uninterrupted run does."""
    from gencompile.eject import eject
    from gencompile.run_status import RunInterrupted
    from gencompile.runtime.checkpoint_files import listed
    from gencompile.sampling import sample

    run = Path(shutil.copytree(vae_runs["first"], tmp_path / "run"))
    before, history_before = finished_files(run), history(run)
    stop_in_epoch_3(monkeypatch, KeyboardInterrupt, number=4)
    with pytest.raises(RunInterrupted):
        resume(run, quiet=True, epochs=5)
    monkeypatch.undo()
    stop_in_epoch_3(monkeypatch, KeyboardInterrupt, number=5)
    with pytest.raises(RunInterrupted):
        resume(run, quiet=True)
    monkeypatch.undo()
    assert [c.epoch for c in listed(run / "checkpoints")] == [3, 4]  # keep: 2
    assert max(summary_steps(run)) == 4 and len(history(run).splitlines()) == 1 + 4
    with pytest.raises(RunError, match=r"give it up with `gencompile train --resume .* --discard"):
        resume(run, quiet=True, epochs=3)

    # eject, meanwhile, is the finished revision's (Task: as sample, with the note)
    capsys.readouterr()
    ejected = eject(run, tmp_path / "ejected")
    assert "a continuation to 5 epochs was interrupted at epoch 4" in capsys.readouterr().err
    assert (
        ejected.weights
        and (tmp_path / "ejected" / "model.weights.h5").read_bytes() == before["model.weights.h5"]
    )
    assert "'epochs': 1" in (tmp_path / "ejected" / "cont_vae" / "train.py").read_text().replace(
        '"', "'"
    )

    code, out, err = run_cli("train", "--resume", str(run), "--discard-continuation")

    assert (code, err) == (0, "")
    assert f"discarded the continuation to 5 epochs of {run} (it had reached epoch 4)" in out
    assert "finished training of 1 epoch again" in out and "--epochs N` (N > 1)" in out
    assert finished_files(run) == before
    assert history(run) == history_before
    assert summary_steps(run) and max(summary_steps(run)) == 1
    assert [c.epoch for c in listed(run / "checkpoints")] == [1]  # put back from its copy
    assert not (run / "checkpoints" / "continuation").exists()
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "finished" and status["error"] is None
    assert status["finished_revision"] is None and status["continuation"] is None
    assert status["discarded_continuation"]["epochs"] == 5
    sample(run, 4, run / "drawn.npz")
    assert "note" not in capsys.readouterr().err
    code, _, err = run_cli("train", "--resume", str(run), "--discard-continuation")
    assert code == 1 and "has no continuation to discard (status: finished)" in err

    finished = resume(run, quiet=True, epochs=3)

    whole = json.loads((vae_runs["whole"] / "metrics.json").read_text())
    assert finished.record["weights_sha256"] == whole["weights_sha256"]
    assert_same_history(run, vae_runs["whole"])
    [revision] = read_lock(run)["revisions"]
    assert (revision["revision"], revision["epochs_before"], revision["epochs_after"]) == (2, 1, 3)
    assert revision["previous_lock_sha256"] == json.loads(before["spec.lock.json"])["lock_sha256"]
    status = json.loads((run / "status.json").read_text())  # the discard is history now
    assert status["status"] == "finished" and status["discarded_continuation"] is None


def test_discarding_is_refused_without_a_stopped_continuation(
    vae_runs: dict[str, Path], tmp_path: Path, run_cli
) -> None:
    """A finished run, a first training interrupted, a run in training: nothing is touched."""
    from gencompile.continuation import discard
    from gencompile.run_status import recorded

    run = Path(shutil.copytree(vae_runs["first"], tmp_path / "run"))
    before = finished_files(run)
    with pytest.raises(RunError, match=r"no continuation to discard \(status: finished\)"):
        discard(run)
    (run / "status.json").write_text(json.dumps({"status": "interrupted"}))
    with pytest.raises(RunError, match="its own first training, interrupted before it finished"):
        discard(run)
    training = pytest.raises(RunError, match=r"being trained right now .*then discard it with")
    with recorded(run), training:  # this process trains it, holding the folder's lock
        discard(run)
    assert finished_files(run) == before
    code, _, err = run_cli("train", "--resume", str(run), "--discard-continuation", "--epochs", "3")
    assert code == 2 and "not with --epochs" in err
    code, _, err = run_cli("train", "--discard-continuation")
    assert code == 2 and "goes with --resume RUN alone" in err


# The run's own final files: a continuation writes its own beside its pending project.
OWN_FILES = (
    *FINISHED_FILES,
    "model.keras",
    "samples.png",
    "curves.png",
    "report.md",
    "report.html",
    "history.csv",
)


def own_files(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in OWN_FILES if (run / name).is_file()}


def no_room_for_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make writing samples.png fail (a full disk), after the weights and model.keras."""
    import errno

    from gencompile.runtime import training

    def no_room(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "samples.png")

    monkeypatch.setattr(training, "write_samples", no_room)


def test_a_continuation_failing_among_its_final_files_leaves_the_runs_own(
    vae_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A continuation that fails after writing its weights and model.keras (samples.png
    cannot be written) has replaced none of the run's own files: eject ships the finished
    weights, sample uses them, and once discarded the run is its finished one byte for
    byte (the continuation's files go with the pending folder)."""
    from gencompile.continuation import discard
    from gencompile.eject import eject
    from gencompile.sampling import sample

    run = Path(shutil.copytree(vae_runs["first"], tmp_path / "run"))
    before = own_files(run)
    assert {"model.weights.h5", "model.keras", "metrics.json"} <= set(before)
    no_room_for_samples(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        resume(run, quiet=True, epochs=2)
    monkeypatch.undo()
    written = run / "checkpoints" / "continuation" / "final"
    assert (written / "model.weights.h5").is_file() and (written / "model.keras").is_file()
    assert {k: v for k, v in own_files(run).items() if k != "history.csv"} == {
        k: v for k, v in before.items() if k != "history.csv"
    }
    ejected = eject(run, tmp_path / "ejected")
    assert "model.weights.h5" in ejected.weights
    assert (tmp_path / "ejected" / "model.weights.h5").read_bytes() == before["model.weights.h5"]
    sample(run, 4, tmp_path / "drawn.npz")  # the weights training recorded

    done = discard(run)

    assert (done.epochs, done.target, done.reached) == (1, 2, 2)
    assert own_files(run) == before
    assert not (run / "checkpoints" / "continuation").exists()
    capsys.readouterr()
    sample(run, 4, tmp_path / "drawn.npz")
    assert "note" not in capsys.readouterr().err


def test_a_finished_continuation_promotes_its_final_files(
    vae_runs: dict[str, Path], tmp_path: Path
) -> None:
    """The final files of a continuation finished again after a failure among them are
    the run's: those of an uninterrupted run."""
    run = Path(shutil.copytree(vae_runs["first"], tmp_path / "run"))
    with pytest.MonkeyPatch.context() as patch:
        no_room_for_samples(patch)
        with pytest.raises(OSError, match="No space left"):
            resume(run, quiet=True, epochs=3)

    finished = resume(run, quiet=True)

    whole = vae_runs["whole"]
    assert (
        finished.record["weights_sha256"]
        == json.loads((whole / "metrics.json").read_text())["weights_sha256"]
    )
    assert (run / "samples.png").read_bytes() == (whole / "samples.png").read_bytes()
    assert (run / "model.keras").is_file() and (run / "report.md").is_file()
    assert not (run / "checkpoints" / "continuation").exists()


def test_a_discard_counts_unsaved_epochs_clears_leftovers_and_can_be_run_again(
    vae_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A continuation from 1 to 3 epochs failed in epoch 3 without a checkpoint of epoch 2
    (one at most every 60 s): it reached epoch 2 all the same, which a discard cut short
    after removing the epochs' files still knows when run again. Temporary files of writes
    cut short go, and so does the TensorBoard event file of the continuation, left without
    a summary; status.json keeps no process id of it."""
    import tensorflow as tf

    from gencompile import continuation
    from gencompile.runtime.tensorboard import event_files, read_records

    run = Path(shutil.copytree(vae_runs["first"], tmp_path / "run"))
    files_before = sorted(p.name for p in event_files(run / "tensorboard"))
    stop_in_epoch_3(monkeypatch, RuntimeError)
    capsys.readouterr()
    with pytest.raises(RuntimeError, match="stopped in epoch 3"):
        resume(run, quiet=True, epochs=3)
    monkeypatch.undo()
    assert capsys.readouterr().err.strip() == (
        f"note: {run} keeps its finished training of 1 epoch; once the cause is fixed, "
        f"continue with `gencompile train --resume {run}`, or give the continuation up with "
        f"`gencompile train --resume {run} --discard-continuation`"
    )
    assert len(history(run).splitlines()) == 1 + 2
    leftovers = [
        run / "checkpoints" / ".tmp-4242-0a1b2c3d-epoch-0003.weights.h5",
        run / "checkpoints" / ".epoch-0002.rng.npz.4242.0a1b2c3d.tmp",
        run / "progress" / ".samples-epoch-0002.png.4242.0a1b2c3d.tmp",
    ]
    for path in leftovers:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"cut short")
    kept = run / "checkpoints" / ".tmp-4242-0a1b2c3d-epoch-0001.weights.h5"  # not after 1
    kept.write_bytes(b"cut short")
    remove = continuation._remove_epochs_after

    def cut_short(*args):
        remove(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(continuation, "_remove_epochs_after", cut_short)
    with pytest.raises(KeyboardInterrupt):
        continuation.discard(run)
    monkeypatch.undo()
    assert len(history(run).splitlines()) == 1 + 1  # its rows of epoch 2 are gone

    done = continuation.discard(run)

    assert (done.epochs, done.target, done.reached) == (1, 3, 2)
    assert not any(path.exists() for path in leftovers) and kept.exists()
    assert sorted(p.name for p in event_files(run / "tensorboard")) == files_before
    for path in event_files(run / "tensorboard"):
        events = [tf.compat.v1.Event.FromString(r) for r in read_records(path)[0]]
        assert any(event.HasField("summary") for event in events), path
    status = json.loads((run / "status.json").read_text())
    assert status["discarded_continuation"]["reached"] == 2
    assert status.get("pid") is None and status.get("host") is None


def test_a_stop_says_how_to_give_a_continuation_up(
    vae_runs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    """Ctrl-C or an error in a continuation names --discard-continuation beside --resume;
    in a first training, neither does."""
    from gencompile.run_status import RunInterrupted, recorded

    run = Path(shutil.copytree(vae_runs["first"], tmp_path / "run"))
    with pytest.raises(RunInterrupted) as stopped, recorded(run):
        raise KeyboardInterrupt
    assert "--discard-continuation" not in str(stopped.value)
    with pytest.raises(RuntimeError), recorded(run):
        raise RuntimeError("broken")
    assert "--discard-continuation" not in capsys.readouterr().err
    status = json.loads((run / "status.json").read_text())
    status.update(status="finished", finished_revision={"epochs": 1}, continuation={"epochs": 3})
    (run / "status.json").write_text(json.dumps(status))
    with pytest.raises(RunInterrupted) as stopped, recorded(run):
        raise KeyboardInterrupt
    assert str(stopped.value) == (
        f"interrupted: {run} keeps its checkpoint of epoch 1; continue with `gencompile train "
        f"--resume {run}`, or give the continuation up with `gencompile train --resume {run} "
        "--discard-continuation` (until then sample and evaluate use its finished training "
        "of 1 epoch)"
    )
    with pytest.raises(RuntimeError) as failed, recorded(run):
        raise RuntimeError("broken")
    assert "--discard-continuation" in capsys.readouterr().err
    assert "--discard-continuation" in failed.value.__notes__[0]


def test_no_training_starts_while_a_continuation_is_built(
    vae_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder's lock is held while the continuation's project is built."""
    from gencompile import continuation
    from gencompile.run_status import refuse_if_training

    run = Path(shutil.copytree(vae_runs["first"], tmp_path / "run"))

    def build_pending(*args, **kwargs):
        with pytest.raises(RunError, match="being written right now by another gencompile command"):
            refuse_if_training(run)  # as another process would be
        raise SystemExit("built")

    monkeypatch.setattr(continuation, "build_pending", build_pending)
    with pytest.raises(SystemExit, match="built"):
        resume(run, quiet=True, epochs=3)


def test_promoting_final_files_replaces_folders_and_clears_a_killed_promotes_leftovers(
    tmp_path: Path,
) -> None:
    """metrics.json and files replace the run's; a folder (saved_model/) replaces the run's
    by renames; a folder a promote killed between its renames left aside goes too."""
    from gencompile.continuation import REPLACED, move_final_files

    run, final = tmp_path / "run", tmp_path / "final"
    (run / "saved_model").mkdir(parents=True)
    (run / "saved_model" / "old.pb").write_text("old")
    (run / "metrics.json").write_text("{}")
    (run / f"{REPLACED}999-latent").mkdir()  # a killed promote's
    (final / "saved_model").mkdir(parents=True)
    (final / "saved_model" / "new.pb").write_text("new")
    (final / "metrics.json").write_text('{"epochs": 3}')
    (final / ".samples.png.1.ab.tmp").write_text("cut short")

    move_final_files(final, run)

    assert sorted(p.name for p in run.iterdir()) == ["metrics.json", "saved_model"]
    assert [p.name for p in (run / "saved_model").iterdir()] == ["new.pb"]
    assert (run / "metrics.json").read_text() == '{"epochs": 3}'
