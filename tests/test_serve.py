"""`gencompile serve`'s API, asked over real HTTP (httpx) of a real uvicorn server on a free
loopback port: a conditional VAE and a Gaussian mixture, each trained once for a few steps.
Answers are checked against `gencompile sample`, `score` and `impute` on the same run
(every family, through the `gencompile serve` command itself: test_serve_families.py)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import quick

httpx = pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[1]
FEW = ["training.epochs=1", "training.steps_per_epoch=3", "evaluation.metrics=[]"]


def _served(tmp_path_factory: pytest.TempPathFactory, spec: str, settings: list[str], **limits):
    from gencompile.runs import train
    from gencompile.serving import Limits
    from gencompile.serving.api import create_app
    from gencompile.serving.engine import load_engine

    folder = tmp_path_factory.mktemp(spec.split(".")[0])
    run = train(
        ROOT / "specs" / spec, quick(spec, [*FEW, *settings]), run_dir=folder / "run", quiet=True
    )
    return run.run_dir, create_app(load_engine(run.run_dir), Limits(**limits))


@pytest.fixture(scope="module")
def cvae(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    from gencompile.serving.server import running

    settings = ["evaluation.importance_samples=8"]  # the IWAE score's samples
    run_dir, app = _served(tmp_path_factory, "cvae_digits.yaml", settings)
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield run_dir, client


@pytest.fixture(scope="module")
def gmm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    from gencompile.serving.server import running

    run_dir, app = _served(
        tmp_path_factory, "gmm_blobs.yaml", [], max_samples=100, max_body_bytes=20_000
    )
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield run_dir, client


def test_healthz_says_what_the_run_answers(cvae, gmm) -> None:
    health = cvae[1].get("/healthz").json()
    assert health["status"] == "ok" and health["family"] == "vae"
    assert health["element_shape"] == [8, 8, 1] and health["num_classes"] == 10
    assert health["endpoints"] == ["/sample", "/score"]
    assert gmm[1].get("/healthz").json()["endpoints"] == ["/sample", "/score", "/impute"]


def test_openapi_page_lists_every_endpoint(cvae) -> None:
    spec = cvae[1].get("/openapi.json").json()
    assert {"/sample", "/score", "/impute", "/healthz"} <= set(spec["paths"])
    docs = cvae[1].get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_seeded_samples_are_those_of_gencompile_sample(cvae, tmp_path) -> None:
    from gencompile.sampling import sample

    run_dir, client = cvae
    answer = client.post("/sample", json={"n": 6, "seed": 7, "label": 3}).json()
    samples = np.asarray(answer["samples"], np.float32)
    assert answer["shape"] == [6, 8, 8, 1] and samples.shape == (6, 8, 8, 1)
    assert answer["labels"] == [3] * 6
    assert samples.min() >= 0.0 and samples.max() <= 16.0  # digits' pixel range, in data units
    out = sample(run_dir, 6, tmp_path / "s.npz", labels=3, seed=7)
    with np.load(out) as files:
        np.testing.assert_array_equal(samples, files["samples"])


def test_same_seed_same_samples_and_no_seed_fresh_ones(cvae) -> None:
    client = cvae[1]

    def draw(body: dict[str, Any]) -> np.ndarray:
        return np.asarray(client.post("/sample", json=body).json()["samples"])

    first = draw({"n": 4, "seed": 11})
    assert client.post("/sample", json={"n": 4}).json()["labels"] == [0, 1, 2, 3]  # cycling
    np.testing.assert_array_equal(first, draw({"n": 4, "seed": 11}))
    assert not np.array_equal(first, draw({"n": 4, "seed": 12}))
    assert not np.array_equal(draw({"n": 4}), draw({"n": 4}))


def test_unseeded_draws_differ_at_every_start_and_seeded_ones_do_not(gmm, monkeypatch) -> None:
    """Two starts of one run (or two replicas) draw different unseeded samples, none of them
    the run's own seed's; a seed draws the same samples on both, and leaves the unseeded
    stream where it was."""
    from gencompile.serving import engine as serving

    run_dir = gmm[0]
    one, other = serving.load_engine(run_dir), serving.load_engine(run_dir)
    first = one.sample(3).samples
    assert not np.array_equal(first, other.sample(3).samples)
    run_seed = int(one.module.SEED)
    assert not np.array_equal(first, one.sample(3, seed=run_seed).samples)
    np.testing.assert_array_equal(one.sample(3, seed=5).samples, other.sample(3, seed=5).samples)

    monkeypatch.setattr(serving.secrets, "randbelow", lambda _: 1234)  # two alike starts
    alike, twin = serving.load_engine(run_dir), serving.load_engine(run_dir)
    np.testing.assert_array_equal(alike.sample(3).samples, twin.sample(3).samples)
    twin.sample(3, seed=9)
    np.testing.assert_array_equal(alike.sample(3).samples, twin.sample(3).samples)


def test_scores_are_those_of_gencompile_score(gmm, tmp_path) -> None:
    from gencompile.scoring import score

    run_dir, client = gmm
    x = np.asarray(client.post("/sample", json={"n": 5, "seed": 1}).json()["samples"])
    x[4] += 50.0  # far from every blob: the most anomalous
    answer = client.post("/score", json={"examples": x.tolist()})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    np.save(tmp_path / "x.npy", x)
    result = score(run_dir, tmp_path / "scores.csv", tmp_path / "x.npy")
    rows = list(csv.DictReader((tmp_path / "scores.csv").open()))
    assert body["kind"] == result.kind == "nll_nats" and body["description"] == result.description
    assert body["outside_support"] == [False] * 5 and body["support"] is None  # Gaussians
    np.testing.assert_allclose(body["scores"], [float(r["score"]) for r in rows], rtol=1e-6)
    assert int(np.argmax(body["scores"])) == 4


def test_examples_outside_the_support_are_null_and_marked_as_the_cli_flags_them(
    cvae, tmp_path
) -> None:
    """A bernoulli likelihood gives digits' values outside 0..16 probability 0: the score is
    +inf, which JSON cannot write, so null with `outside_support` true; `gencompile score`
    writes inf and flags it. The example inside scores as on the command line."""
    from sklearn.datasets import load_digits

    from gencompile.scoring import score

    run_dir, client = cvae
    x = np.stack([load_digits().data[0], np.full(64, -100.0), np.full(64, 40.0)])
    answer = client.post("/score", json={"examples": x.tolist(), "labels": [0, 1, 2]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["scores"][1:] == [None, None] and isinstance(body["scores"][0], float)
    assert body["outside_support"] == [False, True, True]
    assert "a bernoulli likelihood gives values outside [0, 1]" in body["support"]
    inside = client.post("/score", json={"examples": x[:1].tolist(), "labels": [0]}).json()
    assert inside["outside_support"] == [False] and inside["support"] == body["support"]
    np.savez(tmp_path / "x.npz", x=x, labels=np.array([0, 1, 2]))
    result = score(run_dir, tmp_path / "scores.csv", tmp_path / "x.npz")
    rows = list(csv.DictReader((tmp_path / "scores.csv").open()))
    assert [r["score"] for r in rows[1:]] == ["inf", "inf"] and result.outside == 2
    assert [r["flag"] for r in rows[1:]] == ["1", "1"]
    np.testing.assert_allclose(body["scores"][0], float(rows[0]["score"]), rtol=1e-6)


def test_imputes_like_gencompile_impute(gmm, tmp_path) -> None:
    from gencompile.imputation import impute

    run_dir, client = gmm
    x = np.asarray(client.post("/sample", json={"n": 3, "seed": 2}).json()["samples"])
    rows: list[list[float | None]] = x.tolist()
    rows[0][1] = rows[0][5] = rows[2][0] = None
    answer = client.post("/impute", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    filled = np.asarray(answer.json()["rows"])
    assert answer.json()["cells_filled"] == 3 and np.isfinite(filled).all()
    observed = np.array([[v is not None for v in row] for row in rows])
    np.testing.assert_array_equal(filled[observed], x[observed])  # sent back as sent
    header = [f"x{i}" for i in range(x.shape[1])]
    source = tmp_path / "in.csv"
    lines = [",".join(header)] + [",".join("" if v is None else repr(v) for v in r) for r in rows]
    source.write_text("\n".join(lines) + "\n")
    impute(run_dir, source, tmp_path / "out.csv")
    expected = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(filled, expected, rtol=1e-12)


BAD_SAMPLES = [
    ({"n": 0}, "greater than or equal to 1"),
    ({"n": "3"}, "valid integer"),
    ({"n": True}, "valid integer"),
    ({"n": 2, "seed": -1}, "greater than or equal to 0"),
    ({"n": 2, "seed": 2**31}, "less than or equal to 2147483647"),  # sample_options.SEED_MAX
    ({"label": 10}, "classes 0..9"),
    ({"samples": 3}, "Extra inputs are not permitted"),
    (
        {"top_k": 5},
        "a vae model takes no top_k (it keeps the k likeliest next tokens of an "
        "autoregressive model); autoregressive and vq_vae models take it",
    ),
    ({"temperature": 1e-7}, "greater than or equal to 0.000001"),  # sample's 1e-6: RANGES
    ({"top_p": 1e-45}, "greater than or equal to 0.000001"),  # was a 500 on a language model
    ({"top_k": 2**31}, "less than or equal to 2147483647"),  # an int32 (10**400 was a 500)
    ({"prompt": "1+1"}, "only a language model"),
]


@pytest.mark.parametrize(("body", "message"), BAD_SAMPLES, ids=[str(b) for b, _ in BAD_SAMPLES])
def test_bad_sample_requests_are_422_with_why(cvae, body: dict[str, Any], message: str) -> None:
    answer = cvae[1].post("/sample", json=body)
    assert answer.status_code == 422 and message in answer.text


BAD_SCORES = [
    ({"examples": [[1, 2, 3]], "labels": [0]}, "shape [3], but the model was trained on"),
    ({"examples": [[0] * 64, [0] * 63], "labels": [0, 0]}, "examples[1] is shaped unlike"),
    ({"examples": [[[1, 2], [3]]]}, "examples[0] is not a rectangular array: its lists of one"),
    ({"examples": [[0] * 64, [[1, 2], [3]]]}, "examples[1] is not a rectangular array"),
    ({"examples": [json.loads("[" * 70 + "1" + "]" * 70)]}, "examples[0] is nested 70 lists deep"),
    ({"examples": [[0] * 63 + ["a"]], "labels": [0]}, "examples[0][63]: expected a number"),
    ({"examples": [[0] * 63 + [True]], "labels": [0]}, "expected a number, got bool"),
    (
        {"examples": [[0] * 63 + [10**400]], "labels": [0]},
        "examples[0][63]: an integer of about 401",
    ),
    ({"examples": [[0] * 64]}, "give one label per example"),
    ({"examples": [[0] * 64], "labels": [10]}, "labels[0] = 10: classes are 0..9"),
    ({"examples": [[0] * 64], "labels": [0, 1]}, "2 labels for 1 examples"),
    ({"examples": []}, "at least 1 item"),
]


@pytest.mark.parametrize(("body", "message"), BAD_SCORES, ids=[m for _, m in BAD_SCORES])
def test_bad_score_requests_are_422_with_why(cvae, body: dict[str, Any], message: str) -> None:
    answer = cvae[1].post("/score", json=body)
    assert answer.status_code == 422 and message in answer.text
    assert '"input"' not in answer.text  # the request is not echoed back


def test_limits_and_unsupported_endpoints(cvae, gmm) -> None:
    client = gmm[1]
    many = client.post("/sample", json={"n": 101})
    assert many.status_code == 422 and "at most 100 per request" in many.json()["detail"]
    big = client.post("/score", json={"examples": [[0.0] * 16] * 2000})
    assert big.status_code == 413 and "over 20,000 bytes" in big.json()["detail"]
    chunked = client.post("/score", content=(b" " * 1000 for _ in range(30)))
    assert chunked.status_code == 413
    wrong = client.post("/impute", json={"rows": [[1.0, None]]})
    assert wrong.status_code == 422 and "has 2 values; the model has 16 features" in wrong.text
    refused = cvae[1].post("/impute", json={"rows": [[0.0] * 64]})
    assert refused.status_code == 404 and "only a mixture model can impute" in refused.text
    json_type = {"content-type": "application/json"}
    truncated = client.post("/score", content=b"{oops", headers=json_type)
    assert truncated.status_code == 422 and "JSON decode error" in truncated.text
    assert client.get("/nowhere").status_code == 404


def test_concurrent_requests_get_their_own_answers(gmm) -> None:
    """Seeded draws from 16 threads at once equal the same draws asked one at a time: the
    model's calls are serialized, and no request moves another's generators."""
    client = gmm[1]
    seeds = list(range(32))
    alone = [client.post("/sample", json={"n": 3, "seed": s}).json()["samples"] for s in seeds]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda s: client.post("/sample", json={"n": 3, "seed": s}), seeds))
    assert [a.status_code for a in answers] == [200] * len(seeds)
    assert [a.json()["samples"] for a in answers] == alone


def test_sampling_options_take_the_ranges_gencompile_sample_takes(cvae) -> None:
    """One definition of each range (sample_options.RANGES): /sample refuses what `sample`
    refuses, as /openapi.json says."""
    from gencompile.sample_options import RANGES

    schema = cvae[1].get("/openapi.json").json()["components"]["schemas"]["SampleRequest"]
    for field in ("seed", "length", "temperature", "top_k", "top_p"):
        bounds = next(b for b in schema["properties"][field]["anyOf"] if b["type"] != "null")
        assert (bounds["minimum"], bounds.get("maximum")) == RANGES[field], field


def test_json_nested_deeper_than_python_reads_is_a_422_saying_so(cvae) -> None:
    """Python's json raises a RecursionError, no JSON error: the answer says why, not "There
    was an error parsing the body"."""
    body = '{"examples": ' + "[" * 100_000 + "]" * 100_000 + "}"
    headers = {"content-type": "application/json"}
    answer = cvae[1].post("/score", content=body.encode(), headers=headers)
    assert answer.status_code == 422, answer.text
    assert "arrays and objects nested 100001 deep: an array has at most 64 axes" in answer.text


def test_openapi_declares_the_bodies_of_the_refusals(gmm) -> None:
    """A client made from /openapi.json reads every refusal: a 422's detail is a sentence or
    a list of problems, a 404's, 413's and 415's a sentence."""
    from gencompile.serving.api import Invalid, Refusal

    client = gmm[1]
    spec = client.get("/openapi.json").json()
    for path, codes in [
        ("/sample", {"413", "415", "422"}),
        ("/score", {"404", "413", "415", "422"}),
    ]:
        responses = spec["paths"][path]["post"]["responses"]
        assert codes | {"200"} == set(responses), path
        schemas = {
            code: responses[code]["content"]["application/json"]["schema"]["$ref"] for code in codes
        }
        assert schemas.pop("422").endswith("/Invalid")
        assert all(ref.endswith("/Refusal") for ref in schemas.values())
    detail = spec["components"]["schemas"]["Invalid"]["properties"]["detail"]["anyOf"]
    assert [d["type"] for d in detail] == ["string", "array"]
    refused = client.post("/sample", json={"n": 101})  # the server's own 422: a sentence
    invalid = client.post("/sample", json={"n": "3"})  # the schema's: a list of problems
    assert refused.status_code == invalid.status_code == 422
    assert isinstance(Invalid.model_validate(refused.json()).detail, str)
    assert Invalid.model_validate(invalid.json()).detail[0].loc == ["body", "n"]
    big = client.post("/score", json={"examples": [[0.0] * 16] * 2000})
    form = client.post("/sample", content=b'{"n": 1}')
    assert (big.status_code, form.status_code) == (413, 415)
    assert Refusal.model_validate(big.json()) and Refusal.model_validate(form.json())


def test_an_option_the_family_does_not_take_says_which_families_take_it() -> None:
    """A diffusion model takes no temperature; a GAN does (not only an autoregressive
    model): the refusal is `gencompile sample`'s reason, by the option's names."""
    from gencompile.serving.api import create_app
    from gencompile.serving.engine import Engine
    from gencompile.serving.limits import RequestError
    from gencompile.serving.server import running

    def engine(family: str) -> Engine:
        # No model: the options are refused before the model is asked.
        none: Any = None
        return Engine(
            run_dir=Path("run"), model=none, module=none, family=family, data=none,
            text=False, num_classes=None, scorer=None, initial_states=[],
        )  # fmt: skip

    app = create_app(engine("diffusion"))
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        answer = client.post("/sample", json={"n": 2, "temperature": 0.5})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == (
        "temperature: a diffusion model takes no temperature (it scales the spread of a prior, "
        "or the softmax of a language model); vae, flow, mixture, gan, autoregressive and "
        "vq_vae models take it"
    )
    engine("gan")._check_sample_request(None, None, {"temperature": 0.5})  # taken
    with pytest.raises(RequestError, match="a gan model takes no top_p"):
        engine("gan")._check_sample_request(None, None, {"top_p": 0.5})


def test_a_temperature_over_100_is_refused(gmm) -> None:
    answer = gmm[1].post("/sample", json={"n": 1, "temperature": 1e300})
    assert answer.status_code == 422, answer.text
    assert "less than or equal to 100" in answer.text
    assert gmm[1].post("/sample", json={"n": 1, "temperature": 100}).status_code == 200


def test_samples_that_are_not_finite_are_a_clear_422() -> None:
    """A model whose samples overflow answers why, not a 500 from the JSON encoder."""
    from types import SimpleNamespace

    from gencompile.serving.api import create_app
    from gencompile.serving.server import running

    def sample(n: int, *args: Any, **options: Any) -> Any:
        return SimpleNamespace(samples=np.array([[1.0, np.inf]] * n), labels=None)

    engine = SimpleNamespace(sample=sample, run_dir=Path("run"), family="mixture")
    app = create_app(engine)  # type: ignore[arg-type]
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        answer = client.post("/sample", json={"n": 2, "temperature": 50})
    assert answer.status_code == 422, answer.text
    assert "samples[0] is not a finite number" in answer.json()["detail"]


def test_healthz_answers_at_once_while_model_requests_fill_the_thread_pool() -> None:
    """A liveness probe does not wait behind the model: 48 /sample requests hold all 40
    threads of FastAPI's pool (AnyIO's default) waiting on the model, 8 more queue for one,
    and /healthz still answers at once."""
    import threading
    import time
    from types import SimpleNamespace

    from gencompile.serving.api import create_app
    from gencompile.serving.server import running

    entered: list[int] = []
    release = threading.Event()

    def sample(n: int, *args: Any, **options: Any) -> Any:
        entered.append(n)
        release.wait(60)  # a long model call, holding its thread
        return SimpleNamespace(samples=np.zeros((n, 2)), labels=None)

    engine = SimpleNamespace(
        sample=sample, run_dir=Path("run"), family="mixture", text=False, can_impute=True,
        num_classes=None, data=SimpleNamespace(element_shape=(2,)),
    )  # fmt: skip
    app = create_app(engine)  # type: ignore[arg-type]
    with (
        running(app) as url,
        httpx.Client(base_url=url, timeout=60) as client,
        ThreadPoolExecutor(48) as pool,
    ):
        try:
            answers = [pool.submit(client.post, "/sample", json={"n": 1}) for _ in range(48)]
            deadline = time.monotonic() + 30
            while len(entered) < 40 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)  # the 8 others reach the server and queue for a thread
            assert len(entered) == 40  # every thread of the pool is taken
            start = time.perf_counter()
            health = client.get("/healthz", timeout=5)  # before: waits for the model
            took = time.perf_counter() - start
        finally:
            release.set()
        assert [a.result().status_code for a in answers] == [200] * 48
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert took < 1.0, f"/healthz took {took:.1f} s"


def test_an_integer_too_long_for_python_to_read_is_a_422_saying_so(cvae) -> None:
    """Python reads no integer of over 4300 digits, and its json says so in no JSON error:
    the answer names the number, not "There was an error parsing the body"."""
    body = b'{"examples": [[' + b"1" * 5000 + b"]], " + b'"labels": [0]}'
    answer = cvae[1].post("/score", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert "an integer of about 5000 digits is too large (at most about 1.8e+308)" in answer.text


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(gmm, constant: str) -> None:
    body = '{"rows": [[' + constant + ", 1.0" * 15 + "]]}"
    headers = {"content-type": "application/json"}
    answer = gmm[1].post("/impute", content=body.encode(), headers=headers)
    assert answer.status_code == 422, answer.text
    assert f"{constant.lstrip('-')} is not a JSON number" in answer.text
    score = gmm[1].post("/score", content=b'{"examples": [[NaN]]}', headers=headers)
    assert score.status_code == 422 and "NaN is not a JSON number" in score.text


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "TEXT/PLAIN; charset=utf-8"]
)
def test_a_body_not_sent_as_json_is_a_415_that_says_so(gmm, content_type: str) -> None:
    """curl -d sends a form's content type: the body is a JSON object, the header is wrong,
    and the answer names the header, not a body that "should be a valid dictionary"."""
    client = gmm[1]
    body = b'{"n": 2, "seed": 1}'
    for path in ("/sample", "/score", "/impute"):
        answer = client.post(path, content=body, headers={"content-type": content_type})
        assert answer.status_code == 415, (path, answer.text)
        assert "send JSON with the header Content-Type: application/json" in answer.text
    bare = client.post("/sample", content=body)  # no content type: not read as JSON either
    assert bare.status_code == 415 and "sent without a content type" in bare.text
    json_charset = {"content-type": "application/json; charset=utf-8"}
    assert client.post("/sample", content=body, headers=json_charset).status_code == 200
