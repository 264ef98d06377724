"""The contract between generated code and the code that trains and uses it.

Generated `model.py` and `train.py` files are written against this module: the runtime
(`training`), and the commands that use a trained run (`sampling`, `imputation`), ask a
model for a capability with `isinstance(model, <Protocol>)`, never by guessing from method
names, and the configs generated code passes are typed here as the compiler writes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, TypedDict, runtime_checkable

__all__ = [
    "CheckpointConfig",
    "DensityModel",
    "DistributionConfig",
    "GeneratedModel",
    "Imputer",
    "InitializedFromData",
    "LanguageModel",
    "LatentVariableModel",
    "OutputConfig",
    "ReportConfig",
    "SamplesConfig",
    "TakesSamplingOptions",
    "TrainedInStages",
    "TrainingConfig",
]


@runtime_checkable
class GeneratedModel(Protocol):
    """What every generated model has, besides being a `keras.Model`."""

    def sample(self, num_samples: int, *args: Any, **kwargs: Any) -> Any: ...

    def training_callbacks(self) -> list[Any]: ...


@runtime_checkable
class InitializedFromData(Protocol):
    """A model whose fresh fit starts from the data (k-means, actnorm, a GAN's scale)."""

    def initialize(self, data: Any) -> None: ...


@runtime_checkable
class TrainedInStages(Protocol):
    """A model with a second fit after its own, on what the first learned (a VQ-VAE's prior
    over its codes): `training.fit` calls it once the main fit has finished."""

    def fit_next_stage(self, data: Any, run_dir: Path, quiet: bool) -> None: ...


@runtime_checkable
class CompiledForEpochSize(Protocol):
    """A model whose compilation depends on the batches of an epoch (a mixture's E-step is
    worth compiling with XLA only when an epoch has many). Called on every fit, resumed
    ones too, so a resumed run computes as an uninterrupted one."""

    def choose_compilation(self, batches_per_epoch: int) -> None: ...


@runtime_checkable
class Imputer(Protocol):
    """A model that fills missing values itself (a mixture's conditional means). A VAE and a
    flow are imputed from outside (`runtime/imputation.py`), through the protocols below."""

    def impute(self, x: Any) -> Any: ...


@runtime_checkable
class LatentVariableModel(Protocol):
    """A model with an encoder q(z | x) and a decoder p(x | z) (a VAE): `encode` returns
    the posterior's mean and log-variance, `likelihood.mean` reads the decoder's output."""

    likelihood: Any

    def encode(self, x: Any, y: Any = None, training: bool = False) -> Any: ...

    def decode(self, z: Any, y: Any = None, training: bool = False) -> Any: ...


@runtime_checkable
class DensityModel(Protocol):
    """A model with an exact, differentiable log p(x) per example (a flow; `dequantization`
    is None on continuous data)."""

    dequantization: Any

    def log_prob(self, x: Any, training: bool = False) -> Any: ...


@runtime_checkable
class LanguageModel(Protocol):
    """A model whose samples are text, continuing an optional prompt."""

    def sample_text(self, num_samples: int, prompt: str | None = None, **sampling: Any) -> Any: ...


@runtime_checkable
class TakesSamplingOptions(Protocol):
    """A model whose `sample` takes options besides the count (autoregressive models:
    temperature, top_k, top_p), named in `sampling_options`."""

    sampling_options: tuple[str, ...]


class CheckpointConfig(TypedDict, total=False):
    every_epochs: int
    every_seconds: float  # projects built before it existed hold none: 0, every epoch
    keep: int


class DistributionConfig(TypedDict):
    strategy: str  # none | mirrored | multi_worker


class TrainingConfig(TypedDict, total=False):
    """`TRAINING` of a generated train.py (the spec's training section, every default set;
    a family with one optimizer per network has `optimizers` instead of `optimizer`)."""

    epochs: int
    steps_per_epoch: int | None
    steps_per_execution: int | str  # "auto" or a count; absent from older projects
    validation_every_epochs: int | str  # "auto" or a count; absent from older projects
    optimizer: dict[str, Any]
    optimizers: dict[str, dict[str, Any]]
    schedule: dict[str, Any] | None
    early_stopping: dict[str, Any] | None
    checkpoint: CheckpointConfig
    mixed_precision: bool
    distribution: DistributionConfig
    deterministic: bool


class SamplesConfig(TypedDict):
    count: int
    format: str  # png | npz
    every_epochs: int


class ReportConfig(TypedDict):
    latent_pictures: bool


class OutputConfig(TypedDict, total=False):
    """`OUTPUT` of a generated train.py (every key but `tensorboard` and `report`, absent
    from projects built before them, is always there)."""

    samples: SamplesConfig
    export: list[str]
    tensorboard: bool
    report: ReportConfig
