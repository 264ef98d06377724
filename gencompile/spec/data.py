"""The `data:` section: where examples come from and how they are prepared."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from gencompile.levels import DATA_LEVELS as DATA_LEVELS
from gencompile.spec.base import (
    AsTuple,
    FieldError,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Probability,
    StrictModel,
)

# The sources that can stream (a copy of `datafiles.STREAMING_SOURCES`, checked equal by a test).
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
    # 24x24 grey images of a shape at a known position and scale (factors for `mig`).
    "shapes2d": {"n_samples": 10000},
}
BuiltinName = Literal[
    "digits",
    "moons",
    "circles",
    "swiss_roll",
    "ring8",
    "grid25",
    "blobs",
    "arithmetic",
    "shapes2d",
]


class BuiltinSource(StrictModel):
    """Offline data sets that need no file; arguments default per data set."""

    type: Literal["builtin"]
    name: BuiltinName = Field(
        description="The data set; arithmetic is text (lines a+b=c); shapes2d is 24x24 "
        "images of a square, ellipse, heart or triangle (the label) at a known position and "
        "scale (the factors that `mig` reads)."
    )
    n_samples: PositiveInt | None = Field(None, description="Examples generated (all but digits).")
    noise: NonNegativeFloat | None = Field(
        None, description="Std of the Gaussian noise (moons, circles, swiss_roll)."
    )
    factor: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None, description="Inner circle's radius over the outer's (circles)."
    )
    std: PositiveFloat | None = Field(None, description="Std of each mode (ring8, grid25).")
    radius: PositiveFloat | None = Field(None, description="Radius of the ring (ring8).")
    n_features: PositiveInt | None = Field(None, description="Dimensions (blobs).")
    centers: PositiveInt | None = Field(None, description="Number of blobs (blobs).")
    cluster_std: PositiveFloat | None = Field(None, description="Std of each blob (blobs).")
    max_operand: Annotated[int, Field(ge=1, le=10**9)] | None = Field(
        None, description="Largest operand of the sums (arithmetic)."
    )
    classes: list[Annotated[int, Field(ge=0)]] | None = Field(
        None,
        min_length=1,
        description="Keep only the examples of these classes (labelled data sets; labels "
        "keep their values), e.g. digits 0-8 to score the 9s as anomalies.",
    )
    fraction: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None,
        description="Keep this share of the examples (after classes:): a fixed draw, the "
        "same for every seed, stratified by class on labelled data sets (small-data runs).",
    )

    @model_validator(mode="after")
    def _classes_once(self) -> BuiltinSource:
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            twice = next(c for c in self.classes if self.classes.count(c) > 1)
            raise FieldError("classes", f"names class {twice} twice")
        return self

    def arguments(self) -> dict[str, float | int]:
        """The data set's arguments with defaults filled in."""
        given = {
            k: v for k, v in self.model_dump(exclude={"type", "name"}).items() if v is not None
        }
        return {**BUILTIN_ARGUMENTS[self.name], **given}


class NpzSource(StrictModel):
    """A NumPy .npz archive: an array of examples and, optionally, one of class labels."""

    type: Literal["npz"]
    path: str = Field(min_length=1, description="The .npz file.")
    key: str = Field("x", description="Name of the examples' array.")
    labels: str | None = Field(None, description="Name of the class labels' array.")


class NpySource(StrictModel):
    """A NumPy .npy array of examples (first axis); streams beyond 256 MiB."""

    type: Literal["npy"]
    path: str = Field(min_length=1, description="The .npy file.")


class ImagesSource(StrictModel):
    """A folder of images (png, jpeg, bmp, gif, tiff, webp, netpbm; 8- or 16-bit pixels); one
    level of class subfolders gives labels. Image files of other types, or in deeper folders,
    are refused, never skipped; what macOS leaves in a folder (`__MACOSX/`, `.DS_Store`,
    `._*` files) is skipped."""

    type: Literal["images"]
    dir: str = Field(min_length=1, description="The folder.")
    size: Annotated[tuple[PositiveInt, PositiveInt], AsTuple] = Field(
        description="[height, width] every image is resized to."
    )
    color: Literal["grayscale", "rgb"] = Field(
        "grayscale", description="Color mode images are converted to."
    )


class CsvSource(StrictModel):
    """A CSV file with a header row: numeric feature columns and an optional label column."""

    type: Literal["csv"]
    path: str = Field(min_length=1, description="The .csv file.")
    columns: list[str] | None = Field(
        None, min_length=1, description="Feature columns; default: every column but the label."
    )
    label_column: str | None = Field(
        None,
        description="Class labels: all numbers, or all names mapped to their sorted order.",
    )


class ParquetSource(StrictModel):
    """A Parquet file: numeric feature columns and an optional label column (numbers, or
    class names mapped to the indices of their sorted order)."""

    type: Literal["parquet"]
    path: str = Field(min_length=1, description="The .parquet file.")
    columns: list[str] | None = Field(
        None, min_length=1, description="Feature columns; default: every column but the label."
    )
    label_column: str | None = Field(None, description="Column of class labels.")


class KerasSource(StrictModel):
    """keras.datasets: needs the network the first time."""

    type: Literal["keras"]
    name: Literal["mnist", "fashion_mnist", "cifar10", "cifar100"] = Field(
        description="The data set."
    )


class TextSource(StrictModel):
    """A text file, modelled as a stream of tokens (autoregressive family)."""

    type: Literal["text"]
    path: str = Field(min_length=1, description="The text file.")
    encoding: Literal["utf-8", "latin-1", "ascii"] = Field(
        "utf-8", description="The file's encoding."
    )


FeatureName = Annotated[str, Field(min_length=1, max_length=256)]


class RecordValues(StrictModel):
    """x as numbers: a float_list (dtype float32) or int64_list (dtype int64) feature with a
    fixed number of values, read as `shape` ((D,) a vector, (H, W) or (H, W, C) an image)."""

    type: Literal["values"]
    name: FeatureName = Field(description="The feature's key in each tf.train.Example.")
    shape: Annotated[tuple[PositiveInt, ...], AsTuple, Field(min_length=1, max_length=3)] = Field(
        description="(D,) a vector, (H, W) or (H, W, C) an image."
    )
    dtype: Literal["float32", "int64"] = Field(
        "float32", description="float32 for a float_list feature, int64 for an int64_list."
    )


class RecordImage(StrictModel):
    """x as an encoded image (PNG, JPEG, GIF or BMP bytes), decoded by TensorFlow and
    resized bilinearly to `size` when it differs."""

    type: Literal["image"]
    name: FeatureName = Field(description="The feature's key in each tf.train.Example.")
    size: Annotated[tuple[PositiveInt, PositiveInt], AsTuple] = Field(
        description="[height, width] of the decoded images."
    )
    color: Literal["grayscale", "rgb"] = Field(
        "grayscale", description="Color mode of the decoded images."
    )


class RecordFeatures(StrictModel):
    """Which features of each tf.train.Example are read."""

    x: Annotated[RecordValues | RecordImage, Field(discriminator="type")] = Field(
        description="The feature holding an example: numbers or an encoded image."
    )
    label: FeatureName | None = Field(
        None, description="An int64 feature holding one class index (>= 0) per example."
    )


class TfrecordSource(StrictModel):
    """Sharded TFRecord files of tf.train.Example records; streams beyond 256 MiB."""

    type: Literal["tfrecord"]
    files: str = Field(
        min_length=1,
        description="A glob of the shards, e.g. shards/*.tfrecord, read in sorted order.",
    )
    features: RecordFeatures
    compression: Literal["none", "gzip", "zlib"] = Field("none", description="Of every shard.")


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
    """Scaling of numeric data, fitted on the training split."""

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
    """keras.layers.RandomFlip."""

    type: Literal["random_flip"]
    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = "horizontal"


class RandomRotation(StrictModel):
    """keras.layers.RandomRotation: factor is a fraction of a full turn."""

    type: Literal["random_rotation"]
    factor: Annotated[float, Field(gt=0, le=1)]


class RandomTranslation(StrictModel):
    """keras.layers.RandomTranslation: factors are fractions of the height and width."""

    type: Literal["random_translation"]
    height_factor: Annotated[float, Field(ge=0, le=1)]
    width_factor: Annotated[float, Field(ge=0, le=1)]


class RandomZoom(StrictModel):
    """keras.layers.RandomZoom."""

    type: Literal["random_zoom"]
    height_factor: Annotated[float, Field(gt=-1, le=1)]


class RandomContrast(StrictModel):
    """keras.layers.RandomContrast."""

    type: Literal["random_contrast"]
    factor: Annotated[float, Field(gt=0, le=1)]


Augmentation = Annotated[
    RandomFlip | RandomRotation | RandomTranslation | RandomZoom | RandomContrast,
    Field(discriminator="type"),
]


DIGITS_EXAMPLES = 1797  # scikit-learn's load_digits
# Examples of each digit 0-9 in scikit-learn's load_digits (fixed: no draw), which the
# spec's checks count a `classes:` selection with.
DIGITS_PER_CLASS = (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)


class DataSpec(StrictModel):
    """Where the examples come from and how they are prepared."""

    source: DataSource = Field(description="Where the examples come from.")
    validation_split: Probability = Field(
        0.1, description="Fraction held out (a seeded split) for the held-out metrics."
    )
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    augmentation: list[Augmentation] = Field(
        default_factory=list, description="Random transformations of training images, in order."
    )
    batch_size: PositiveInt = Field(
        128, description="The global batch, split between the replicas of a distributed run."
    )
    shuffle_buffer: PositiveInt = Field(
        10000,
        description="Records permuted together when tfrecord shards stream; other data is "
        "fully permuted each epoch, seeded by (seed, epoch).",
    )
    cache: Literal["auto", "memory", "stream"] = Field(
        "auto",
        description="auto streams file data beyond 256 MiB of float32 values (csv: rows "
        "estimated from its first MiB) and loads the rest; memory always loads; stream always "
        "streams.",
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

    def example_count(self) -> int | None:
        """How many examples the source holds, when the spec alone says: a built-in data
        set, with `classes:` only for digits (a generated set's per-class counts depend on
        the draw); else None."""
        source = self.source
        if not isinstance(source, BuiltinSource):
            return None
        if source.classes is not None:
            count = _digits_in_classes(source)
            if count is None:
                return None
        elif source.name == "digits":
            count = DIGITS_EXAMPLES
        else:
            count = int(source.arguments()["n_samples"])
        if source.fraction is not None and source.fraction < 1:
            count = round(source.fraction * count)  # as `runtime.sources.fraction_indices`
        return count


def _digits_in_classes(source: BuiltinSource) -> int | None:
    """The digits of `source.classes` (None for another data set, or when no digit has one
    of them: the runtime refuses that with its own message)."""
    if source.name != "digits" or source.classes is None:
        return None
    count = sum(DIGITS_PER_CLASS[c] for c in source.classes if c < len(DIGITS_PER_CLASS))
    return count or None
