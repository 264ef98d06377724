"""The report's last-epoch table: a value no step of the epoch computed is said so."""

from __future__ import annotations

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
