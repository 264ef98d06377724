"""Hostile input to `gencompile train --workers` and the `multi_worker` strategy."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_resume_with_workers_refuses_a_run_trained_in_one_process(vae_copy: Path, hostile):
    outcome = hostile("train", "--resume", vae_copy, "--workers", "2", "--quiet")
    outcome.assert_refused(1, "trained with the 'none' strategy", "resume it without --workers")


@pytest.mark.parametrize("count", ["0", "-1", "two"])
def test_a_worker_count_below_one_is_a_usage_error(count: str, tiny_vae_spec: Path, hostile):
    outcome = hostile("train", tiny_vae_spec, "--workers", count, "--quiet")
    outcome.assert_refused(2, "--workers")


def test_a_tf_config_that_is_not_json_stops_with_a_message(
    tiny_vae_spec: Path, hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TF_CONFIG", "{cluster: workers}")
    outcome = hostile(
        "train", tiny_vae_spec, "--set", "training.distribution.strategy=multi_worker", "--quiet"
    )
    outcome.assert_refused(1, "TF_CONFIG is not JSON", "Scaling out", allowed=("runs/",))
