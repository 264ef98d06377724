"""`gencompile serve` under a bounded load: 500 requests from 16 concurrent clients to the
command's child process, none failing, every answer right (benchmarks/serve_load.py
measures the same load on a longer-trained run and writes the figures to the README)."""

from __future__ import annotations

from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_500_requests_from_16_clients_all_answered(tmp_path: Path) -> None:
    from gencompile.runs import train
    from gencompile.serving.load import run_load
    from gencompile.serving.server import serving_process

    settings = ["training.epochs=1", "evaluation.metrics=[]"]  # EM: every batch an epoch
    run = train(ROOT / "specs" / "gmm_blobs.yaml", settings, run_dir=tmp_path / "run", quiet=True)
    with serving_process(run.run_dir) as (url, _):
        with httpx.Client(base_url=url) as client:  # one request at a time: the answers
            alone = {
                s: client.post("/sample", json={"n": 8, "seed": s}).json()["samples"]
                for s in range(4)
            }
            examples = alone[0]
            scores = client.post("/score", json={"examples": examples}).json()["scores"]

        def make(i: int) -> tuple[str, dict]:
            if i % 2 == 0:
                return "/sample", {"n": 8, "seed": i // 2 % 4}
            return "/score", {"examples": examples}

        def check(i: int, answer: dict) -> str | None:
            right = alone[i // 2 % 4] if i % 2 == 0 else scores
            found = answer["samples"] if i % 2 == 0 else answer["scores"]
            return None if found == right else "differs from the same request made alone"

        result = run_load(url, 500, 16, make, check)
    print(
        f"p50 {result.percentile(50) * 1000:.1f} ms, p99 {result.percentile(99) * 1000:.1f} ms, "
        f"{500 / result.seconds:.0f} requests/s"
    )
    assert result.failed == 0, result.errors[:3]
    assert result.count() == 500 and result.count("/sample") == 250
    assert sorted(set(result.statuses)) == [200]
    assert 0 < result.percentile(50) <= result.percentile(99) < 60
