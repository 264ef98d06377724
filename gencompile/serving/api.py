"""The HTTP JSON API of a served run: FastAPI routes over an `Engine`.

Requests are pydantic models in strict mode (JSON numbers for numbers, `true` is not 1) that
forbid unknown keys, so a bad request is a 422 naming the field; a request the model cannot
answer is a 422 (or 404 when the run's family has no such operation) saying why. The model's
routes are plain functions, which FastAPI runs in its thread pool; the engine's lock
serializes the model calls, so concurrent requests are safe. /healthz touches no model and
runs on the event loop: requests queued for the pool's threads cannot delay it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gencompile._version import __version__
from gencompile.errors import RunError
from gencompile.sample_options import RANGES
from gencompile.serving.arrays import MAX_AXES, numbers, too_large
from gencompile.serving.body_limit import BodyLimit
from gencompile.serving.engine import Engine
from gencompile.serving.limits import Limits, RequestError


class _NonStandard(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NonStandard(name)


def _too_long_integer(text: str) -> json.JSONDecodeError:
    """The error of an integer longer than Python reads (4300 digits): its json raises a
    plain ValueError there, which FastAPI would answer with a 400 that does not say why."""
    limit = getattr(sys, "get_int_max_str_digits", lambda: 4300)()
    found = re.search(rf"(?<!\d)\d{{{limit + 1},}}", text)  # from a run's start: linear
    digits = len(found.group()) if found else limit + 1
    return json.JSONDecodeError(too_large(digits), text, found.start() if found else 0)


def _too_deep(text: str) -> json.JSONDecodeError:
    """The error of arrays and objects nested deeper than Python's json reads (its
    recursion limit, about 1000): its RecursionError is no JSON error, a bare 400."""
    masked = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: " " * len(m.group()), text)  # no strings
    codes = np.frombuffer(masked.encode("utf-32-le"), np.uint32)  # one per character
    opened = np.isin(codes, (ord("["), ord("{"))).astype(np.int64)
    depth = np.cumsum(opened - np.isin(codes, (ord("]"), ord("}"))))
    deepest = int(depth.max()) if depth.size else 0
    return json.JSONDecodeError(
        f"arrays and objects nested {deepest} deep: an array has at most {MAX_AXES} axes",
        text,
        int(np.argmax(depth)) if depth.size else 0,  # where it is deepest
    )


class _StrictJSONRequest(Request):
    """A request whose JSON body may not hold NaN, Infinity or -Infinity (Python's json
    accepts them; standard JSON does not, and /impute would read NaN as a missing cell),
    nor an integer too long for Python to read, nor nesting deeper than it reads (their
    errors are no JSON errors: a bare 400)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            text = (await self.body()).decode("utf-8", errors="replace")
            try:
                self._json = json.loads(text, parse_constant=_refuse_constant)
            except json.JSONDecodeError:
                raise
            except _NonStandard as error:
                name = str(error)
                raise json.JSONDecodeError(
                    f"{name} is not a JSON number (send a finite number; null marks a "
                    "missing cell)",
                    text,
                    max(text.find(name), 0),
                ) from None
            except ValueError:  # json's only other error: an integer too long to read
                raise _too_long_integer(text) from None
            except RecursionError:
                raise _too_deep(text) from None
        return self._json


def _not_json(request: Request) -> Response | None:
    """A 415 for a body sent without a JSON content type (curl -d's default is a form's):
    FastAPI reads such a body as no object, and its 422 would not name the header. None: a
    request that is no POST, or says it sends JSON."""
    given = request.headers.get("content-type", "")
    media = given.split(";")[0].strip().lower()
    if request.method != "POST" or media == "application/json" or media.endswith("+json"):
        return None
    sent = f"sent as {media!r}" if media else "sent without a content type"
    return JSONResponse(
        {"detail": f"the body is {sent}: send JSON with the header Content-Type: "
         "application/json (curl: -H 'content-type: application/json')"},
        status_code=415,
    )  # fmt: skip


class _StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            refused = _not_json(request)
            if refused is not None:
                return refused
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _within(option: str, description: str) -> Any:
    """A field of `gencompile sample`'s option, in the range the command line takes
    (`sample_options.RANGES`: /sample answers what `sample` answers, and refuses what it
    refuses), optional."""
    least, most = RANGES[option]
    return Field(None, ge=least, le=most, description=description)


class SampleRequest(_Request):
    """What to draw. A language model answers texts continuing `prompt`."""

    n: int = Field(
        1, ge=RANGES["n"][0], description="How many samples (at most the server's limit)."
    )
    seed: int | None = _within(
        "seed", "Same seed, same samples; none: fresh draws (new at every start)."
    )
    label: int | None = Field(None, ge=0, description="Class of every sample (conditional).")
    prompt: str | None = Field(None, max_length=10_000, description="Language models only.")
    length: int | None = _within("length", "Tokens to add (language models).")
    temperature: float | None = _within(
        "temperature",
        "Scale of the prior's spread (VAE, flow, mixture, GAN); softmax temperature "
        "(autoregressive models).",
    )
    top_k: int | None = _within("top_k", "Autoregressive models (0: off).")
    top_p: float | None = _within("top_p", "Autoregressive models.")


class ScoreRequest(_Request):
    """Examples in the training data's units, each shaped like the data or flattened."""

    examples: list[Any] = Field(min_length=1, description="Nested lists of numbers.")
    labels: list[int] | None = Field(None, description="One class per example (conditional).")

    @field_validator("examples")
    @classmethod
    def _numbers(cls, examples: list[Any]) -> list[Any]:
        numbers(examples, "examples")  # numbers only, every example shaped alike
        return examples


class ImputeRequest(_Request):
    """Rows of the training features in order, null where a value is missing."""

    rows: list[list[float | None]] = Field(min_length=1)


class SampleResponse(BaseModel):
    samples: list[Any] = Field(description="Arrays in data units, or texts (language models).")
    labels: list[int] | None
    shape: list[int]


class ScoreResponse(BaseModel):
    kind: str
    description: str
    scores: list[float | None] = Field(
        description="Higher = less like the training data; null for an example outside the "
        "data's support (its score is +infinity, which JSON cannot write)."
    )
    outside_support: list[bool] = Field(
        description="Per example: a value lies where the likelihood is 0 (score +infinity)."
    )
    support: str | None = Field(
        description="Why such values have probability 0, whether or not an example is outside; "
        "null: the likelihood has no such values."
    )
    labels: list[int] | None


class ImputeResponse(BaseModel):
    rows: list[list[float]]
    cells_filled: int


class Health(BaseModel):
    status: str
    run: str
    family: str
    text: bool
    element_shape: list[int]
    num_classes: int | None
    endpoints: list[str]
    limits: dict[str, int]


class Refusal(BaseModel):
    detail: str = Field(description="Why the request is refused, and what to send instead.")


class Problem(BaseModel):
    loc: list[str | int] = Field(description="Where: body, then the field and its indices.")
    msg: str
    type: str


class Invalid(BaseModel):
    detail: str | list[Problem] = Field(
        description="A request that does not fit the model: a sentence saying why (n over "
        "the limit, a wrong shape, a label out of range); a body unlike the schema: one "
        "problem per field (a wrong type, a value out of range, an unknown key)."
    )


# The answers of a refused POST, for /openapi.json (FastAPI would declare only its own 422).
REFUSED: dict[int | str, dict[str, Any]] = {
    413: {"model": Refusal, "description": "The body is over the server's --max-body-bytes."},
    415: {"model": Refusal, "description": "The body is not sent as application/json."},
    422: {"model": Invalid, "description": "The request is refused, saying why."},
}
NO_SUCH_OPERATION: dict[int | str, dict[str, Any]] = {
    404: {"model": Refusal, "description": "This run's family has no such operation."}
}


def _message(error: Any) -> str:
    """A validation error's message; a JSON decode error's says what it met."""
    message = str(error.get("msg", ""))
    reason = (error.get("ctx") or {}).get("error")
    return f"{message}: {reason}" if error.get("type") == "json_invalid" and reason else message


def create_app(engine: Engine, limits: Limits | None = None) -> Any:
    """The FastAPI app serving `engine`, wrapped in the body-size limit."""
    limits = limits or Limits()
    app = FastAPI(
        title=f"gencompile: {engine.run_dir.name} ({engine.family})",
        version=__version__,
        description="Samples, anomaly scores and imputations of one trained gencompile run.",
    )
    app.router.route_class = _StrictJSONRoute  # before the routes: they are made of it

    @app.exception_handler(RequestError)
    async def _refused(request: Request, error: RequestError) -> JSONResponse:
        return JSONResponse({"detail": error.message}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's answer without the `input` it echoes: a request can be megabytes.
        problems = [
            {"loc": list(e.get("loc", ())), "msg": _message(e), "type": e.get("type", "")}
            for e in error.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(RunError)
    async def _run_error(request: Request, error: RunError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Any:  # async: not behind the model's requests in the thread pool
        """The run being served, what it answers, and the limits of a request."""
        endpoints = ["/sample"] + ([] if engine.text else ["/score"])
        endpoints += ["/impute"] if engine.can_impute else []
        return Health(
            status="ok",
            run=str(engine.run_dir),
            family=engine.family,
            text=engine.text,
            element_shape=list(engine.data.element_shape),
            num_classes=engine.num_classes,
            endpoints=endpoints,
            limits=vars(limits),
        )

    @app.post("/sample", response_model=SampleResponse, responses=REFUSED)
    def sample(request: SampleRequest) -> Any:
        """Draw `n` samples in the data's units (a language model: texts), like `gencompile
        sample`; a conditional model cycles through its classes unless given `label`."""
        if request.n > limits.max_samples:
            raise RequestError(422, f"n = {request.n}: at most {limits.max_samples} per request")
        if request.length is not None and request.length > limits.max_length:
            raise RequestError(
                422, f"length = {request.length}: at most {limits.max_length} tokens"
            )
        options = request.model_dump(exclude={"n", "seed", "label", "prompt"})
        drawn = engine.sample(request.n, request.seed, request.label, request.prompt, **options)
        samples = drawn.samples
        array = isinstance(samples, np.ndarray)
        if array and not np.isfinite(samples).all():
            bad = int(np.argwhere(~np.isfinite(samples))[0][0])
            raise RequestError(
                422,
                f"samples[{bad}] is not a finite number (the model overflowed): ask with a "
                "lower temperature",
            )
        return JSONResponse(
            {
                "samples": samples.tolist() if array else list(samples),
                "labels": None if drawn.labels is None else drawn.labels.tolist(),
                "shape": list(samples.shape) if array else [len(samples)],
            }
        )

    @app.post(
        "/score",
        response_model=ScoreResponse,
        responses={**REFUSED, **NO_SUCH_OPERATION},
    )
    def score(request: ScoreRequest) -> Any:
        """One anomaly score per example, as `gencompile score` computes it (higher = less
        like the training data); all examples run as one batch. 404 for a language model."""
        if len(request.examples) > limits.max_examples:
            raise RequestError(
                422, f"{len(request.examples)} examples: at most {limits.max_examples} per request"
            )
        scored = engine.score(np.asarray(request.examples, np.float64), request.labels)
        values, outside = scored.scores.tolist(), scored.outside.tolist()
        return JSONResponse(
            {
                "kind": scored.kind,
                "description": scored.description,
                "scores": [None if out else v for v, out in zip(values, outside, strict=True)],
                "outside_support": outside,
                "support": scored.support,
                "labels": request.labels,
            }
        )

    @app.post(
        "/impute",
        response_model=ImputeResponse,
        responses={**REFUSED, **NO_SUCH_OPERATION},
    )
    def impute(request: ImputeRequest) -> Any:
        """Fill the null cells of each row with the mixture's conditional means (mixture
        models only: 404 for another family)."""
        if len(request.rows) > limits.max_examples:
            raise RequestError(
                422, f"{len(request.rows)} rows: at most {limits.max_examples} per request"
            )
        filled, cells = engine.impute([list(row) for row in request.rows])
        return JSONResponse({"rows": filled.tolist(), "cells_filled": cells})

    return BodyLimit(app, limits.max_body_bytes)
