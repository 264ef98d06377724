"""The log axis of a gradient-norm curve is labelled in plain text, never through mathtext
(whose parser costs 0.2-0.3 s of CPU to build in every `gencompile train` that logs a
gradient norm)."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.mathtext
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from gencompile.runtime import pictures
from gencompile.runtime.pictures import PlainLogFormatter, plain_label


@pytest.mark.parametrize(
    ("mathtext", "plain"),
    [
        (r"$\mathdefault{10^{0}}$", "10\u2070"),
        (r"$\mathdefault{10^{2}}$", "10\u00b2"),
        (r"$\mathdefault{10^{-13}}$", "10\u207b\u00b9\u00b3"),
        (r"$\mathdefault{2\times10^{-1}}$", "2\u00d710\u207b\u00b9"),
        (r"$\mathdefault{-10^{1}}$", "\u221210\u00b9"),
        ("", ""),
        ("0.5", "0.5"),
        (r"$\mathdefault{\alpha}$", r"$\mathdefault{\alpha}$"),  # not one of its forms
    ],
)
def test_plain_label(mathtext: str, plain: str):
    assert plain_label(mathtext) == plain


def test_formatter_labels_decades_and_their_multiples():
    labels = PlainLogFormatter()
    assert [labels(v) for v in (0.01, 1.0, 1000.0)] == ["10\u207b\u00b2", "10\u2070", "10\u00b3"]
    assert labels(0.3) == "3\u00d710\u207b\u00b9"
    assert PlainLogFormatter(labelOnlyBase=True)(0.3) == ""


def test_curves_of_a_gradient_norm_need_no_mathtext(tmp_path: Path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("mathtext was parsed")

    monkeypatch.setattr(matplotlib.mathtext.MathTextParser, "parse", refuse)
    drawn: list[Figure] = []
    write = pictures._write_figure

    def keep(figure: Figure, path: Path) -> Path:
        drawn.append(figure)
        return write(figure, path)

    monkeypatch.setattr(pictures, "_write_figure", keep)
    history = {
        "grad_norm": list(np.geomspace(0.05, 40.0, 12)),
        "loss": list(np.linspace(2.0, 1.0, 12)),
        "val_loss": list(np.linspace(2.1, 1.1, 12)),
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = pictures.save_curves(history, tmp_path / "curves.png")

    # The font draws every superscript (matplotlib warns of a glyph it lacks).
    assert not [w for w in caught if "Glyph" in str(w.message)]

    with Image.open(path) as picture:
        assert picture.format == "PNG" and picture.size == (800, 300)
    grad_axes = next(a for a in drawn[0].axes if a.get_title() == "grad_norm")
    assert grad_axes.get_yscale() == "log"
    labels = [t.get_text() for t in grad_axes.get_yticklabels() if t.get_text()]
    assert "10\u207b\u00b9" in labels and "10\u00b9" in labels
    assert not any("$" in label for label in labels)
