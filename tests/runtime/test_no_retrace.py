"""Scoring a model again (`gencompile serve`'s /score, request after request) reuses one
compiled function per model: the model's Python code is traced at most twice (the first
batch size, then one general shape) over three calls of three batch sizes, and the values
are the model's own. Before, flows, PixelCNNs, language models and VQ-VAEs traced anew at
every call (0.1-0.25 s each, and TensorFlow's retracing warnings in the server's log)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile.runtime import autoregressive, flow, vq_vae
from tests.autoregressive.conftest import IMAGE_SPEC, NETWORKS, TEXT_SPEC
from tests.vq_vae.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]
SIZES = (4, 7, 5)  # one call each, as three requests would


def _model(tmp_path: Path, spec: Path | str, overrides: list[str] = ()) -> keras.Model:  # type: ignore[assignment]
    """The built and imported model of `spec` (a path, or a spec's text), untrained."""
    from gencompile.compiler.project import build
    from gencompile.generated import import_generated
    from gencompile.spec import load_spec, load_spec_text

    loaded = load_spec(spec, list(overrides)) if isinstance(spec, Path) else load_spec_text(spec)
    result = build(loaded, tmp_path / "project")
    return import_generated(tmp_path / "project", result.plan.package, "model").build_model()


def _count_traces(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """A counter of the Python calls of `owner.name`: inside a tf.function, its traces."""
    calls = [0]
    original = getattr(owner, name)

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


def _digits(n: int) -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images[:n, :, :, None] / 16.0).astype("float32")


def _scored_three_times(score: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """`score` of x[:4], x[:7], x[:5]: each call's values of the rows it shares agree."""
    values = [score(x[:n]) for n in SIZES]
    for n, v in zip(SIZES, values, strict=True):
        np.testing.assert_allclose(v, values[1][:n], rtol=1e-5, atol=1e-4)
    return values[1]


def test_flow_log_likelihood_and_dequantized_bound_trace_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _model(tmp_path, ROOT / "specs" / "flow_digits.yaml")
    x = _digits(7)
    expected = model.log_prob(tf.constant(x)).numpy()
    traces = _count_traces(monkeypatch, type(model), "log_prob")

    def exact(rows: np.ndarray) -> np.ndarray:
        return flow.log_likelihood(model, rows)

    np.testing.assert_allclose(_scored_three_times(exact, x), expected, rtol=1e-5, atol=1e-3)
    assert traces[0] <= 2

    traces[0] = 0

    def bound(rows: np.ndarray) -> np.ndarray:
        return np.concatenate(list(flow.dequantized_shared_noise_batches(model, rows, 3)))

    assert np.isfinite(_scored_three_times(bound, x)).all()
    assert traces[0] <= 2


def test_pixelcnn_image_nll_traces_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = IMAGE_SPEC.format(name="px", network=NETWORKS["pixelcnn"], evaluation="")
    model = _model(tmp_path, text)
    x = _digits(7)
    expected = model.image_nll(tf.constant(x), training=False).numpy()
    traces = _count_traces(monkeypatch, type(model), "image_nll")

    def nll(rows: np.ndarray) -> np.ndarray:
        return np.concatenate(list(autoregressive.image_nll_batches(model, rows)))

    np.testing.assert_allclose(_scored_three_times(nll, x), expected, rtol=1e-5, atol=1e-4)
    assert traces[0] <= 2


def test_language_model_text_nll_traces_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = TEXT_SPEC.format(name="lm", network=NETWORKS["gru"], teacher_forcing=1.0)
    model = _model(tmp_path, text)
    windows = np.random.default_rng(0).integers(0, 5, (7, 17)).astype("int32")
    expected = [
        float(tf.reduce_sum(tf.cast(model.token_nll(windows[:n], training=False), tf.float64)))
        for n in SIZES
    ]
    traces = _count_traces(monkeypatch, type(model), "token_nll")
    totals = [autoregressive.text_nll(model, windows[:n])[0] for n in SIZES]
    np.testing.assert_allclose(totals, expected, rtol=1e-5)
    assert traces[0] <= 2


def test_vq_vae_nll_bound_traces_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(tmp_path, ROOT / "specs" / "vq_vae_digits.yaml", TINY)
    x = _digits(7)
    xt = tf.constant(x)
    codes = model.encode_to_codes(xt)
    expected = (
        model.vq_terms(xt, training=False)[0].numpy()
        + model.prior.code_nll(codes, training=False).numpy()
    )
    traced = [
        _count_traces(monkeypatch, type(model), "vq_terms"),
        _count_traces(monkeypatch, type(model), "encode_to_codes"),
        _count_traces(monkeypatch, type(model.prior), "code_nll"),
    ]

    def bound(rows: np.ndarray) -> np.ndarray:
        return vq_vae.nll_bound_of(model, rows)

    np.testing.assert_allclose(_scored_three_times(bound, x), expected, rtol=1e-5, atol=1e-3)
    assert all(1 <= t[0] <= 2 for t in traced), [t[0] for t in traced]
