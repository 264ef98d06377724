"""The report's last-epoch table: a value no step of the epoch computed is said so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from gencompile.report import Report, render_html, render_markdown


def report(last_epoch: dict[str, float]) -> Report:
    return Report("run", "", "", {}, last_epoch, [], [], [], [], "")


def test_a_nan_of_the_last_epoch_reads_not_computed_in_both_formats() -> None:
    """A lazy R1 epoch without a penalty update logs nan: not a number to show."""
    epoch = {"d_loss": 1.25, "gradient_penalty": float("nan")}
    markdown = render_markdown(report(epoch))
    assert "| d_loss | 1.2500 |" in markdown
    assert "| gradient_penalty | not computed |" in markdown
    html = render_html(report(epoch))
    assert "not computed" in html and ">nan<" not in html


def test_a_run_whose_early_stopping_kept_an_earlier_epoch_reports_that_epoch(
    trained_vae: Path, tmp_path: Path
) -> None:
    """metrics.json's restored_epoch: the summary says which epoch's weights the run keeps,
    and the epoch table shows that epoch's values, not the last epoch's."""
    from gencompile.report import read_report

    run = Path(shutil.copytree(trained_vae, tmp_path / "run"))
    (run / "history.csv").write_text("epoch,loss,val_loss\n1,30.0,29.5\n2,29.0,29.9\n3,28.0,30.4\n")
    record = json.loads((run / "metrics.json").read_text())
    record.update(epochs=3, restored_epoch=1)
    (run / "metrics.json").write_text(json.dumps(record))
    lock = json.loads((run / "spec.lock.json").read_text())
    lock["resolved_spec"]["training"]["early_stopping"] = {"monitor": "val_loss"}
    (run / "spec.lock.json").write_text(json.dumps(lock))
    made = read_report(run)
    assert "Early stopping kept the weights of epoch 1, its best val_loss" in made.summary
    assert made.last_epoch == {"loss": 30.0, "val_loss": 29.5}
    assert "## Epoch 1 (kept by early stopping)" in render_markdown(made)
    assert "<h2>Epoch 1 (kept by early stopping)</h2>" in render_html(made)
