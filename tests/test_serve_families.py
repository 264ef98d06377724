"""`gencompile serve` answers every endpoint for the shipped spec of every family that samples
(VAE, GAN, flow, diffusion, mixture, character language model, PixelCNN), each trained for a
few steps and served by the command itself in a child process on a free loopback port."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import quick

httpx = pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[1]
FEW = ["training.epochs=1", "training.steps_per_epoch=3", "evaluation.metrics=[]"]
SMALL = ["data.source.n_samples=2000"]

# spec, settings, family, the score's kind (None: a language model, scored on its own text)
CASES = [
    ("vae_digits.yaml", ["evaluation.importance_samples=8"], "vae", "iwae_nll_nats"),
    ("gan_ring8.yaml", SMALL, "gan", "negative_discriminator_score"),
    ("flow_moons.yaml", [], "flow", "nll_nats"),
    ("diffusion_swissroll.yaml", SMALL, "diffusion", "denoising_loss"),
    ("gmm_blobs.yaml", [], "mixture", "nll_nats"),
    ("charlm_arithmetic.yaml", SMALL, "autoregressive", None),
    ("pixelcnn_digits.yaml", [], "autoregressive", "nll_nats"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "settings", "family", "kind"), CASES, ids=[c[0] for c in CASES])
def test_every_endpoint_of_every_family(
    tmp_path: Path, spec: str, settings: list[str], family: str, kind: str | None
) -> None:
    from gencompile.runs import train
    from gencompile.serving.server import serving_process

    run = train(
        ROOT / "specs" / spec, quick(spec, [*FEW, *settings]), run_dir=tmp_path / "run", quiet=True
    )
    with serving_process(run.run_dir, "--max-samples", "64") as (url, process):
        client = httpx.Client(base_url=url, timeout=120)
        health = client.get("/healthz").json()
        assert health["family"] == family and health["status"] == "ok"
        assert client.get("/docs").status_code == 200
        if kind is None:
            _check_text(client)
        else:
            _check_arrays(client, health, kind)
        impute = client.post("/impute", json={"rows": [[None] * 2]})
        if family == "mixture":
            assert impute.status_code == 422  # gmm_blobs has 16 features, not 2
            filled = client.post("/impute", json={"rows": [[None] * 16]}).json()["rows"]
            assert np.isfinite(filled).all() and len(filled[0]) == 16
        else:
            assert impute.status_code == 404 and "only a mixture" in impute.json()["detail"]
        too_many = client.post("/sample", json={"n": 65})
        assert too_many.status_code == 422 and "at most 64" in too_many.json()["detail"]
    assert process.returncode == 130  # stopped by Ctrl-C, as from a terminal


def _check_arrays(client: httpx.Client, health: dict, kind: str) -> None:
    shape = health["element_shape"]
    first = client.post("/sample", json={"n": 4, "seed": 3})
    assert first.status_code == 200, first.text
    samples = np.asarray(first.json()["samples"])
    assert samples.shape == (4, *shape) and np.isfinite(samples).all()
    again = client.post("/sample", json={"n": 4, "seed": 3}).json()["samples"]
    np.testing.assert_array_equal(samples, again)
    other = client.post("/sample", json={"n": 4, "seed": 4}).json()["samples"]
    assert not np.array_equal(samples, other)
    scored = client.post("/score", json={"examples": samples.tolist()})
    assert scored.status_code == 200, scored.text
    assert scored.json()["kind"] == kind
    scores = np.asarray(scored.json()["scores"])
    assert scores.shape == (4,) and np.isfinite(scores).all()
    wrong = client.post("/score", json={"examples": [[0.0] * (int(np.prod(shape)) + 1)]})
    assert wrong.status_code == 422 and "the model was trained on" in wrong.json()["detail"]


def _check_text(client: httpx.Client) -> None:
    body = {"n": 3, "seed": 5, "prompt": "12+", "length": 10, "temperature": 0.8}
    answer = client.post("/sample", json=body).json()
    texts = answer["samples"]
    assert answer["shape"] == [3] and answer["labels"] is None
    assert all(t.startswith("12+") and len(t) == 13 for t in texts)
    assert client.post("/sample", json=body).json()["samples"] == texts
    assert client.post("/sample", json={**body, "seed": 6}).json()["samples"] != texts
    refused = client.post("/score", json={"examples": [[1.0]]})
    assert refused.status_code == 404 and "--split heldout" in refused.json()["detail"]
    empty = client.post("/sample", json={"prompt": ""})
    assert empty.status_code == 422 and "at least one token" in empty.json()["detail"]
    unseen = client.post("/sample", json={"prompt": "abc"})
    assert unseen.status_code == 422, unseen.text
    assert "characters the model never saw: 'a', 'b', 'c'" in unseen.json()["detail"]
    too_long = client.post("/sample", json={"length": 1025})
    assert too_long.status_code == 422 and "at most 1024 tokens" in too_long.json()["detail"]
