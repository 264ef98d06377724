"""A trained run loaded once, answering sample, score and impute requests.

Every answer is computed by the code the command line uses: `gencompile sample`'s seeding,
class labels and chunked drawing (`sampling`), `gencompile score`'s per-family scorers
(`runtime.scores`), and the mixture's `impute`. Model calls are serialized by one lock: a
Keras model and its seed generators are not safe to call from two threads at once, and a
seeded request must not see another request move the generators between its steps.

Unseeded requests draw from one stream that starts at a seed chosen from the OS's entropy at
every start-up, so two starts (or two replicas) draw different samples; a seeded request
leaves that stream where it was.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gencompile.errors import RunError, quoted
from gencompile.generated import load_trained_model, verified_lock
from gencompile.sample_options import FAMILIES, MEANING, SEED_MAX
from gencompile.serving.limits import RequestError


@dataclass(frozen=True)
class ServedData:
    """What serving needs of the training data, rebuilt from the lock's preprocessing
    statistics (no data set is loaded): the map to and from the model's units."""

    preprocessor: Any  # runtime.preprocessing.Preprocessor
    kind: str  # image | vector | text
    feature_names: tuple[str, ...] = ()  # a vector's features by name, for the messages
    x_val: None = None  # no held-out split: checks of the data run on each request's examples

    @property
    def element_shape(self) -> tuple[int, ...]:
        return tuple(self.preprocessor.element_shape)


@dataclass(frozen=True)
class Drawn:
    """Samples in data units (arrays) or texts (a language model), and their classes."""

    samples: np.ndarray | list[str]
    labels: np.ndarray | None


@dataclass(frozen=True)
class Scored:
    kind: str
    description: str
    scores: np.ndarray  # +inf for an example outside the support
    outside: np.ndarray  # per example: outside the likelihood's support (its -log p is inf)
    support: str | None  # why a value there has probability 0 (set whether or not one is
    # outside); None: the likelihood gives every finite value a finite score


def _no_meaning(option: str, family: str) -> str:
    """Why a /sample option is refused for `family`: what it does, and which families take
    it (`gencompile sample`'s FAMILIES and MEANING)."""
    from gencompile.runtime.metrics.levels import listed

    return (
        f"{option}: a {family} model takes no {option} ({MEANING[option]}); "
        f"{listed(list(FAMILIES[option]))} models take it"
    )


@dataclass
class Engine:
    """The model of one finished run and what it can answer."""

    run_dir: Path
    model: Any
    module: Any
    family: str
    data: ServedData
    text: bool
    num_classes: int | None
    scorer: tuple[Any, Any] | None  # (ScoreKind, score function), None for a language model
    initial_states: list[np.ndarray]
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def conditional(self) -> bool:
        return self.num_classes is not None

    @property
    def can_impute(self) -> bool:
        from gencompile.runtime.contract import Imputer

        return isinstance(self.model, Imputer)

    # ------------------------------------------------------------------ sample

    def sample(
        self,
        count: int,
        seed: int | None = None,
        label: int | None = None,
        prompt: str | None = None,
        **options: Any,
    ) -> Drawn:
        """`count` samples in data units (a language model: texts continuing `prompt`);
        `seed` gives the samples `gencompile sample --seed` gives, none fresh draws."""
        from gencompile.sampling import _class_labels, _sample_chunks

        options = {k: v for k, v in options.items() if v is not None}
        self._check_sample_request(label, prompt, options)
        with self.lock, self._drawing_from(seed):
            if self.text:
                return Drawn(self.model.sample_text(count, prompt, **options), None)
            classes = _class_labels(self.model, self.module, self.run_dir, count, label, False)
            chunks = _sample_chunks(self.model, self.data, count, classes, options, None)
            return Drawn(np.concatenate(list(chunks)), classes)

    def _check_sample_request(
        self, label: int | None, prompt: str | None, options: dict[str, Any]
    ) -> None:
        if label is not None and not self.conditional:
            raise RequestError(422, "label: this model is not conditional; it takes no label")
        if label is not None and not 0 <= label < (self.num_classes or 0):
            raise RequestError(
                422, f"label {label}: this model knows classes 0..{(self.num_classes or 0) - 1}"
            )
        if not self.text and (prompt is not None or "length" in options):
            raise RequestError(422, "prompt, length: only a language model takes them")
        for option in sorted(options):
            if self.family not in FAMILIES[option]:  # as `gencompile sample` refuses it
                raise RequestError(422, _no_meaning(option, self.family))
        if self.text and prompt is not None:
            import importlib

            tokenizer = importlib.import_module(type(self.model).__module__).TOKENIZER
            from gencompile.text import unknown_prompt_message

            message = unknown_prompt_message(tokenizer, prompt)
            if message is not None:
                raise RequestError(422, f"prompt: {message}")

    @contextmanager
    def _drawing_from(self, seed: int | None) -> Iterator[None]:
        """The generators set for a request's draws: a seed's (then put back, so the unseeded
        stream goes on where it was), or without one the unseeded stream's next draws."""
        if seed is None:
            yield
            return
        from gencompile.runtime.evaluation import seed_states

        unseeded = [np.asarray(v.numpy()).copy() for v in seed_states(self.model)]
        self._seed(seed)
        try:
            yield
        finally:
            for variable, state in zip(seed_states(self.model), unseeded, strict=True):
                variable.assign(state)

    def _seed(self, seed: int) -> None:
        """Restart the generators from where loading left them, moved by the seed as
        `gencompile sample` moves them."""
        from gencompile.runtime.evaluation import seed_states
        from gencompile.sampling import shift_seed_states

        for variable, state in zip(seed_states(self.model), self.initial_states, strict=True):
            variable.assign(state)
        # Not TensorFlow's global seed: a new one would retrace every compiled sampler.
        shift_seed_states(self.model, seed - int(self.module.SEED))

    # ------------------------------------------------------------------- score

    def score(self, examples: np.ndarray, labels: list[int] | None) -> Scored:
        """The score `gencompile score` gives each example (data units in, one batch)."""
        if self.scorer is None:
            raise RequestError(
                404,
                "a language model is scored on its own held-out text windows, not on posted "
                f"examples: use `gencompile score {quoted(self.run_dir)} --split heldout`",
            )
        x = self.model_units(examples, "examples")
        y = self._labels(labels, len(x))
        from gencompile.runtime.scores import scored

        kind, compute = self.scorer
        self._check_levels(x)
        with self.lock:
            values, outside = scored(kind, compute, x, y)
        if not np.isfinite(values[~outside]).all():
            bad = int(np.argwhere(~np.isfinite(values) & ~outside)[0][0])
            raise RequestError(
                422, f"examples[{bad}]: the model gives it no finite {kind.name}; check its units"
            )
        support = kind.support.explained(self.data.preprocessor) if kind.support else None
        return Scored(kind.name, kind.description, values, outside, support)

    def _check_levels(self, x: np.ndarray) -> None:
        """Refuse an example with a value between the levels of a model of levels (a
        dequantized flow, a categorical likelihood, a pixel model), as `gencompile score
        --input` refuses it: it would be scored as the level it rounds to."""
        from gencompile.runtime.scores import off_level_value

        off = off_level_value(self.model, self.family, x, self.data)
        if off is not None:
            raise RequestError(422, off.message(f"examples[{off.example}]"))

    def model_units(self, examples: np.ndarray, name: str) -> np.ndarray:
        """Examples in data units, shaped like the data or flattened, mapped into the
        model's units; RequestError when they do not fit the model."""
        shape = self.data.element_shape
        size = int(np.prod(shape))
        x = examples
        if x.ndim >= 1 and x.shape[1:] != shape and int(np.prod(x.shape[1:])) == size:
            x = x.reshape(len(x), *shape)  # flattened rows of an image
        if x.ndim < 1 or x.shape[1:] != shape:
            got = x.shape[1:] if x.ndim >= 1 else ()
            raise RequestError(
                422,
                f"{name}: each example has shape {list(got)}, but the model was trained on "
                f"examples of shape {list(shape)} (or {size} values per example)",
            )
        if not np.isfinite(x).all():
            bad = int(np.argwhere(~np.isfinite(x))[0][0])
            raise RequestError(422, f"{name}[{bad}] holds a value that is not finite")
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = np.asarray(self.data.preprocessor.transform(x), np.float32)
        if not np.isfinite(scaled).all():
            bad = int(np.argwhere(~np.isfinite(scaled))[0][0])
            raise RequestError(422, f"{name}[{bad}]: values too large once scaled; check units")
        return scaled

    def _labels(self, labels: list[int] | None, count: int) -> np.ndarray | None:
        if not self.conditional:
            if labels is not None:
                raise RequestError(422, "labels: this model is not conditional; it takes none")
            return None
        top = int(self.num_classes or 0)
        if labels is None:
            raise RequestError(
                422, "labels: a conditional model scores each example with its class; give one "
                "label per example",
            )  # fmt: skip
        if len(labels) != count:
            raise RequestError(422, f"labels: {len(labels)} labels for {count} examples")
        bad = [i for i, label in enumerate(labels) if not 0 <= label < top]
        if bad:
            raise RequestError(
                422, f"labels[{bad[0]}] = {labels[bad[0]]}: classes are 0..{top - 1}"
            )
        return np.asarray(labels, np.int32)

    # ------------------------------------------------------------------ impute

    def impute(self, rows: list[list[float | None]]) -> tuple[np.ndarray, int]:
        """Rows with their missing (null) cells filled with the mixture's conditional means,
        in data units; observed cells come back as they were sent. And the cells filled."""
        if not self.can_impute:
            raise RequestError(
                404, f"this run holds a {self.family} model; only a mixture model can impute"
            )
        features = int(np.prod(self.data.element_shape))
        wrong = next((i for i, row in enumerate(rows) if len(row) != features), None)
        if wrong is not None:
            raise RequestError(
                422, f"rows[{wrong}] has {len(rows[wrong])} values; the model has {features} "
                "features (null where a value is missing)",
            )  # fmt: skip
        values = np.array(
            [[np.nan if v is None else v for v in row] for row in rows], np.float64
        ).reshape(len(rows), features)
        missing = np.isnan(values)
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = self.data.preprocessor.transform(values.reshape(-1, *self.data.element_shape))
        overflow = np.argwhere(~np.isfinite(scaled.reshape(values.shape)) & ~missing)
        if overflow.size:
            row, column = (int(i) for i in overflow[0])
            raise RequestError(422, f"rows[{row}][{column}]: too large once scaled; check units")
        with self.lock:
            filled = np.asarray(self.model.impute(scaled)).reshape(scaled.shape)
        filled = self.data.preprocessor.inverse(filled).reshape(values.shape)
        return np.where(missing, filled, values), int(missing.sum())

    # -------------------------------------------------------------- start-up

    def warm_up(self) -> None:
        """Trace the compiled functions once before the first request, so it is not slow,
        then start the unseeded stream at a seed of the OS's entropy: not the run's own
        stream, which every start of the same run would replay."""
        options = {"length": 1} if self.text else {}
        self.sample(1, **options)
        if self.scorer is not None:
            zeros = self.data.preprocessor.inverse(np.zeros((1, *self.data.element_shape)))
            self.score(zeros.astype(np.float64), [0] if self.conditional else None)
        with self.lock:
            self._seed(secrets.randbelow(SEED_MAX + 1))


def load_engine(run_dir: Path | str, allow_custom_code: bool = False) -> Engine:
    """The run's model loaded once, with the preprocessing its lock recorded."""
    run_dir = Path(run_dir)
    lock = verified_lock(run_dir, allow_custom_code)
    statistics = lock.get("data_statistics")
    if statistics is None:
        raise RunError(
            f"{run_dir}'s lock records no preprocessing statistics (a run from an older "
            "gencompile, or unfinished): retrain it to serve it"
        )
    from gencompile.runtime import repro
    from gencompile.runtime.conditional import model_classes
    from gencompile.runtime.contract import LanguageModel
    from gencompile.runtime.evaluation import seed_states
    from gencompile.runtime.preprocessing import Preprocessor
    from gencompile.runtime.scores import scorer

    model, module = load_trained_model(run_dir, allow_custom_code=allow_custom_code)
    repro.set_seed(module.SEED)  # once: as `gencompile sample` seeds, and deterministic ops
    text = isinstance(model, LanguageModel)
    preprocessor = Preprocessor.from_dict(statistics)
    from gencompile.runtime.pipeline import feature_names

    source = lock["resolved_spec"]["data"]["source"]
    names = () if text else feature_names(source, tuple(preprocessor.element_shape))
    data = ServedData(preprocessor, "text" if text else preprocessor.kind, names)
    conditional = bool(module.DATA["with_labels"])
    engine = Engine(
        run_dir=run_dir,
        model=model,
        module=module,
        family=str(lock["family"]),
        data=data,
        text=text,
        num_classes=model_classes(model) if conditional else None,
        scorer=None if text else scorer(model, lock["family"], data, module.EVALUATION),
        initial_states=[np.asarray(v.numpy()).copy() for v in seed_states(model)],
    )
    engine.warm_up()
    return engine
