"""`gencompile score` for every family, on the shipped specs trained for a few steps.

Where a held-out metric is the mean of the per-example score (flow and PixelCNN `nll`,
diffusion's `denoising_loss`), the mean held-out score must be that metric: exactly where
both are exact (PixelCNN), within Monte Carlo error where the score shares its draws among
the examples and the metric does not (a dequantized flow, a diffusion model); a language
model's per-window token NLL gives back its perplexity (windows have one length)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FEW = ["training.epochs=1", "training.steps_per_epoch=3"]

CASES = [
    ("flow_digits.yaml", ["evaluation.metrics=[nll]", "evaluation.importance_samples=2"],
     "nll_bound_nats", "nll", 0.01),
    ("pixelcnn_digits.yaml", ["evaluation.metrics=[nll]"], "nll_nats", "nll", 1e-5),
    ("diffusion_swissroll.yaml", ["evaluation.metrics=[denoising_loss]",
     "data.source.n_samples=2000"], "denoising_loss", "denoising_loss", 0.05),
    ("cdiffusion_digits.yaml", ["evaluation.metrics=[denoising_loss]"], "denoising_loss",
     "denoising_loss", 0.05),
    ("gan_ring8.yaml", ["evaluation.metrics=[]", "data.source.n_samples=2000"],
     "negative_discriminator_score", None, None),
    ("cgan_digits.yaml", ["evaluation.metrics=[]"], "negative_discriminator_score", None, None),
    ("charlm_arithmetic.yaml", ["evaluation.metrics=[perplexity]", "data.source.n_samples=2000"],
     "nll_nats_per_token", "perplexity", 1e-5),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "settings", "kind", "metric", "rel"), CASES, ids=[c[0] for c in CASES]
)
def test_held_out_scores_of_every_family(
    run_cli, tmp_path, spec, settings, kind, metric, rel
) -> None:
    from gencompile.runs import train

    run = train(ROOT / "specs" / spec, [*FEW, *settings], run_dir=tmp_path / "run", quiet=True)
    out = tmp_path / "s.csv"
    code, stdout, err = run_cli("score", str(run.run_dir), "--split", "heldout", "-o", str(out))
    assert code == 0, err
    rows = list(csv.DictReader(out.open()))
    scores = np.array([float(r["score"]) for r in rows])
    assert {r["score_kind"] for r in rows} == {kind} and np.isfinite(scores).all()
    assert f"score: {kind}:" in stdout
    assert sum(r["flag"] == "1" for r in rows) <= math.ceil(0.01 * len(rows))
    if metric is not None:
        metrics = json.loads((run.run_dir / "metrics.json").read_text())["metrics"]
        found = math.exp(scores.mean()) if metric == "perplexity" else scores.mean()
        assert found == pytest.approx(metrics[metric], rel=rel)
    if spec in BOUNDED:  # an all -100 digit: outside the support of a model of pixel levels
        far = tmp_path / "far.npz"
        np.savez(far, x=np.full((1, 8, 8, 1), -100.0), labels=np.zeros(1, int))
        code, _, err = run_cli("score", str(run.run_dir), "--input", str(far), "-o", str(out))
        assert code == 0, err
        row = next(csv.DictReader(out.open()))
        assert (row["score"] == "inf") == BOUNDED[spec] and (
            row["flag"] == "1" or not BOUNDED[spec]
        )
        assert ("outside the data's support" in err) == BOUNDED[spec]


# Whether a score's likelihood is zero somewhere (runtime.support.Support): a dequantized
# flow's and a PixelCNN's levels are bounded; a diffusion model's loss and a GAN's critic
# are no likelihood, finite everywhere.
BOUNDED = {
    "flow_digits.yaml": True,
    "pixelcnn_digits.yaml": True,
    "cdiffusion_digits.yaml": False,
    "cgan_digits.yaml": False,
}
