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


@pytest.mark.parametrize(
    ("tf_config", "words"),
    [
        # a worker with no cluster trained alone and, not being the chief, wrote nothing
        ('{"task": {"type": "worker", "index": 1}}', ("TF_CONFIG's cluster is null",)),
        (
            '{"cluster": {"worker": ["127.0.0.1:2222"]}, "task": {"type": "worker", "index": 2}}',
            ("TF_CONFIG's task.index is 2", "cluster.worker names 1 task", "from 0 to 0"),
        ),
        (
            '{"cluster": {"worker": "127.0.0.1:2222"}, "task": {"type": "worker", "index": 0}}',
            ("TF_CONFIG's cluster.worker is", "must be a list"),
        ),
    ],
)
def test_a_tf_config_whose_task_is_not_in_its_cluster_stops_with_a_message(
    tf_config: str, words: tuple[str, ...], tiny_vae_spec: Path, hostile, monkeypatch
) -> None:
    monkeypatch.setenv("TF_CONFIG", tf_config)
    outcome = hostile(
        "train", tiny_vae_spec, "--set", "training.distribution.strategy=multi_worker", "--quiet"
    )
    outcome.assert_refused(1, *words, "Scaling out", allowed=("runs/",))
