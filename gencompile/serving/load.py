"""A bounded load test of a served run: `requests` requests from `clients` concurrent
clients (threads, each with its own kept-alive connection), every latency recorded.
Used by `benchmarks/serve_load.py` and the slow test of the server under load."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

# (path, JSON body) of the i-th request
RequestMaker = Callable[[int], tuple[str, dict[str, Any]]]
# What is wrong with the i-th answer (its JSON), or None when it is right
AnswerCheck = Callable[[int, Any], "str | None"]


@dataclass(frozen=True)
class LoadResult:
    """Latencies (seconds) and status codes of every request, by path, and the wall time."""

    paths: list[str]
    latencies: np.ndarray
    statuses: list[int]  # 0: no answer (connection error, timeout)
    wrong: int  # answers with status 200 that the check refused
    errors: list[str]
    seconds: float
    clients: int

    @property
    def failed(self) -> int:
        return sum(status != 200 for status in self.statuses) + self.wrong

    def percentile(self, q: float, path: str | None = None) -> float:
        chosen = self.latencies if path is None else self.latencies[self._of(path)]
        return float(np.percentile(chosen, q))

    def count(self, path: str | None = None) -> int:
        return len(self.paths) if path is None else int(self._of(path).sum())

    def _of(self, path: str) -> np.ndarray:
        return np.array([p == path for p in self.paths])


def run_load(
    url: str, requests: int, clients: int, make: RequestMaker, check: AnswerCheck | None = None
) -> LoadResult:
    """Send `requests` requests (`make(i)` says which) from `clients` threads at once;
    `check(i, answer)` may refuse an answer, which then counts as failed."""
    import httpx

    local = threading.local()
    latencies = np.zeros(requests)
    statuses = [0] * requests
    paths = [""] * requests
    errors: list[str] = []
    opened: list[Any] = []
    wrong: list[int] = []

    def one(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=120)
            opened.append(client)
        path, body = make(i)
        paths[i] = path
        start = time.perf_counter()
        try:
            answer = client.post(path, json=body)
            statuses[i] = answer.status_code
            if answer.status_code != 200:
                errors.append(f"{path}: {answer.status_code} {answer.text[:200]}")
            elif check is not None and (problem := check(i, answer.json())) is not None:
                errors.append(f"{path}: request {i}: {problem}")
                wrong.append(i)
        except httpx.HTTPError as error:
            errors.append(f"{path}: {type(error).__name__}: {error}")
        latencies[i] = time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests)))
    seconds = time.perf_counter() - start
    for client in opened:
        client.close()
    return LoadResult(paths, latencies, statuses, len(wrong), errors, seconds, clients)
