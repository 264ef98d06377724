"""The `data:` section: where examples come from and how they are prepared."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from gencompile.spec.base import (
    AsTuple,
    FieldError,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Probability,
    StrictModel,
)

# The sources that can stream (`datafiles.STREAMING_SOURCES`, which the spec does not import).
STREAMING_TYPES = ("npy", "csv", "parquet", "images", "tfrecord")

# Each built-in data set with its arguments and their defaults (scikit-learn's names).
BUILTIN_ARGUMENTS: dict[str, dict[str, float | int]] = {
    "digits": {},
    "moons": {"n_samples": 3000, "noise": 0.05},
    "circles": {"n_samples": 3000, "noise": 0.05, "factor": 0.5},
    "swiss_roll": {"n_samples": 3000, "noise": 0.5},
    "ring8": {"n_samples": 10000, "std": 0.01, "radius": 1.0},
    "grid25": {"n_samples": 10000, "std": 0.05},
    "blobs": {"n_samples": 10000, "n_features": 2, "centers": 8, "cluster_std": 1.0},
    # Text: lines `a+b=c` with a, b in 0..max_operand (autoregressive family).
    "arithmetic": {"n_samples": 20000, "max_operand": 99},
}
BuiltinName = Literal[
    "digits", "moons", "circles", "swiss_roll", "ring8", "grid25", "blobs", "arithmetic"
]


class BuiltinSource(StrictModel):
    """Offline data sets that need no file; arguments default per data set."""

    type: Literal["builtin"]
    name: BuiltinName
    n_samples: PositiveInt | None = None
    noise: NonNegativeFloat | None = None
    factor: Annotated[float, Field(gt=0, lt=1)] | None = None
    std: PositiveFloat | None = None
    radius: PositiveFloat | None = None
    n_features: PositiveInt | None = None
    centers: PositiveInt | None = None
    cluster_std: PositiveFloat | None = None
    max_operand: Annotated[int, Field(ge=1, le=10**9)] | None = None

    def arguments(self) -> dict[str, float | int]:
        """The data set's arguments with defaults filled in."""
        given = {
            k: v for k, v in self.model_dump(exclude={"type", "name"}).items() if v is not None
        }
        return {**BUILTIN_ARGUMENTS[self.name], **given}


class NpzSource(StrictModel):
    type: Literal["npz"]
    path: str = Field(min_length=1)
    key: str = "x"
    labels: str | None = None


class NpySource(StrictModel):
    type: Literal["npy"]
    path: str = Field(min_length=1)


class ImagesSource(StrictModel):
    """A folder of images; class subfolders give labels."""

    type: Literal["images"]
    dir: str = Field(min_length=1)
    size: Annotated[tuple[PositiveInt, PositiveInt], AsTuple]
    color: Literal["grayscale", "rgb"] = "grayscale"


class CsvSource(StrictModel):
    type: Literal["csv"]
    path: str = Field(min_length=1)
    columns: list[str] | None = Field(None, min_length=1)
    label_column: str | None = None


class ParquetSource(StrictModel):
    """A Parquet file: numeric feature columns and an optional label column (numbers, or
    class names mapped to the indices of their sorted order)."""

    type: Literal["parquet"]
    path: str = Field(min_length=1)
    columns: list[str] | None = Field(None, min_length=1)
    label_column: str | None = None


class KerasSource(StrictModel):
    """keras.datasets: needs the network the first time."""

    type: Literal["keras"]
    name: Literal["mnist", "fashion_mnist", "cifar10", "cifar100"]


class TextSource(StrictModel):
    """A text file, modelled as a stream of tokens (autoregressive family)."""

    type: Literal["text"]
    path: str = Field(min_length=1)
    encoding: Literal["utf-8", "latin-1", "ascii"] = "utf-8"


FeatureName = Annotated[str, Field(min_length=1, max_length=256)]


class RecordValues(StrictModel):
    """x as numbers: a float_list (dtype float32) or int64_list (dtype int64) feature with a
    fixed number of values, read as `shape` ((D,) a vector, (H, W) or (H, W, C) an image)."""

    type: Literal["values"]
    name: FeatureName = Field(description="The feature's key in each tf.train.Example.")
    shape: Annotated[tuple[PositiveInt, ...], AsTuple, Field(min_length=1, max_length=3)]
    dtype: Literal["float32", "int64"] = "float32"


class RecordImage(StrictModel):
    """x as an encoded image (PNG, JPEG, GIF or BMP bytes), decoded by TensorFlow and
    resized bilinearly to `size` when it differs."""

    type: Literal["image"]
    name: FeatureName = Field(description="The feature's key in each tf.train.Example.")
    size: Annotated[tuple[PositiveInt, PositiveInt], AsTuple]
    color: Literal["grayscale", "rgb"] = "grayscale"


class RecordFeatures(StrictModel):
    """Which features of each tf.train.Example are read."""

    x: Annotated[RecordValues | RecordImage, Field(discriminator="type")]
    label: FeatureName | None = Field(
        None, description="An int64 feature holding one class index (>= 0) per example."
    )


class TfrecordSource(StrictModel):
    """Sharded TFRecord files of tf.train.Example records; streams beyond 256 MiB."""

    type: Literal["tfrecord"]
    files: str = Field(
        min_length=1,
        description="A glob of the shards, e.g. shards/*.tfrecord (relative to the working "
        "directory, like other paths); the matched files are read in sorted order.",
    )
    features: RecordFeatures
    compression: Literal["none", "gzip", "zlib"] = "none"


DataSource = Annotated[
    BuiltinSource
    | NpzSource
    | NpySource
    | ImagesSource
    | CsvSource
    | ParquetSource
    | KerasSource
    | TextSource
    | TfrecordSource,
    Field(discriminator="type"),
]


def is_text_source(source: DataSource) -> bool:
    """Text data: a text file or the built-in arithmetic language."""
    return source.type == "text" or (source.type == "builtin" and source.name == "arithmetic")


class Preprocessing(StrictModel):
    scale: Annotated[tuple[float, float], AsTuple] | None = Field(
        None, description="Min-max scale to [low, high] (global for images, per feature otherwise)."
    )
    standardize: bool = Field(False, description="Zero mean, unit variance per feature.")

    @model_validator(mode="after")
    def _one_of(self) -> Preprocessing:
        if self.scale is not None and self.standardize:
            raise FieldError("standardize", "use either `scale` or `standardize`, not both")
        if self.scale is not None and not self.scale[0] < self.scale[1]:
            raise FieldError(
                "scale", f"must be [low, high] with low < high (got {list(self.scale)})"
            )
        return self


class RandomFlip(StrictModel):
    type: Literal["random_flip"]
    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = "horizontal"


class RandomRotation(StrictModel):
    type: Literal["random_rotation"]
    factor: Annotated[float, Field(gt=0, le=1)]


class RandomTranslation(StrictModel):
    type: Literal["random_translation"]
    height_factor: Annotated[float, Field(ge=0, le=1)]
    width_factor: Annotated[float, Field(ge=0, le=1)]


class RandomZoom(StrictModel):
    type: Literal["random_zoom"]
    height_factor: Annotated[float, Field(gt=-1, le=1)]


class RandomContrast(StrictModel):
    type: Literal["random_contrast"]
    factor: Annotated[float, Field(gt=0, le=1)]


Augmentation = Annotated[
    RandomFlip | RandomRotation | RandomTranslation | RandomZoom | RandomContrast,
    Field(discriminator="type"),
]


class DataSpec(StrictModel):
    source: DataSource
    validation_split: Probability = 0.1
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    augmentation: list[Augmentation] = Field(default_factory=list)
    batch_size: PositiveInt = 128
    shuffle_buffer: PositiveInt = Field(
        10000,
        description="Accepted as in Keras; the in-memory training split is fully permuted each "
        "epoch (as a buffer at least as large as the data would), with a seed made of "
        "(seed, epoch); streamed tfrecord shards, which have no random access, are read in a "
        "shuffled shard order with each window of this many records permuted.",
    )
    cache: Literal["auto", "memory", "stream"] = Field(
        "auto",
        description="How file data is held: `auto` streams an npy file, an image folder or "
        "tfrecord shards whose values take more than 256 MiB as float32 (a csv file beyond "
        "about 150 MiB of text) and loads smaller data whole; `memory` always loads whole; "
        "`stream` always reads batches from the files (npy, csv, parquet, images and "
        "tfrecord sources only).",
    )

    @model_validator(mode="after")
    def _stream_supported(self) -> DataSpec:
        if self.cache == "stream" and self.source.type not in STREAMING_TYPES:
            raise FieldError(
                "cache",
                f"only {', '.join(STREAMING_TYPES)} sources stream so far; the "
                f"{self.source.type} source loads whole: use cache: auto or memory",
            )
        return self
