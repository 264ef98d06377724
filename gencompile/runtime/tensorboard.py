"""TensorBoard logs of a run: `RUN/tensorboard/{train,validation}/` event files.

Written with `tf.summary` in the layout and tag names of `keras.callbacks.TensorBoard`
(`epoch_loss` under train/ and validation/, so TensorBoard overlays the two curves), with
three differences that Keras' callback cannot be configured into:

- the step is the 1-based epoch, as in history.csv and the sample pictures' file names;
- every optimizer's learning rate is logged (a GAN has one per network);
- a resumed fit first drops the events of the epochs it is about to train again, so a
  continued run appends and never holds one step twice.

An epoch's scalars are written as one serialized summary per event file: one write, not
one `tf.summary.scalar` op per value (whose Python path cost ~1 ms each).

Also logged: the sample picture of every `output.samples.every_epochs` (the PNG the run
writes, as an image summary) and each functional network's Keras graph at step 0
(TensorBoard's Graphs tab; a model's JSON config, so it costs a few milliseconds).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from gencompile.errors import RunError
from gencompile.runtime.callbacks import _as_float  # a log value as a float, or None

LOG_FOLDER = "tensorboard"  # inside the run directory
SAMPLES_TAG = "samples"


def learning_rates(model: keras.Model) -> dict[str, float]:
    """`learning_rate` of `model.optimizer`, and `<role>_learning_rate` of each other
    optimizer the model holds as `<role>_optimizer` (a GAN's discriminator's); none for a
    model without trainable weights (a mixture fitted by EM)."""
    rates: dict[str, float] = {}
    if not model.trainable_variables:
        return rates
    seen: set[int] = set()
    named = [("optimizer", getattr(model, "optimizer", None)), *vars(model).items()]
    for name, value in named:
        if not isinstance(value, keras.optimizers.Optimizer) or id(value) in seen:
            continue
        if not name.endswith("optimizer") or name.startswith("_"):
            continue
        seen.add(id(value))
        optimizer = getattr(value, "inner_optimizer", value)  # under a LossScaleOptimizer
        role = name[: -len("optimizer")]
        rates[f"{role}learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    return rates


def event_files(log_dir: Path) -> list[Path]:
    return sorted(Path(log_dir).glob("*/events.out.tfevents.*"))


def drop_steps_after(log_dir: Path, last_step: int) -> None:
    """Rewrite each event file without the summaries of steps > `last_step` (file version
    and graph events stay) and without a last record cut short (a killed process). A file
    that needs neither is not touched; a rewrite goes to a temporary name and replaces
    the file whole. A file whose summaries are all of steps > `last_step` (one a later
    training started) is deleted: it would be its header alone."""
    for path in event_files(log_dir):
        records, torn = read_records(path)
        events = [tf.compat.v1.Event.FromString(r) for r in records]
        after = [_is_summary_after(event, last_step) for event in events]
        if not any(after) and not torn:
            continue
        if any(after) and not any(
            e.HasField("summary") and not dropped for e, dropped in zip(events, after, strict=True)
        ):
            path.unlink()
            continue
        kept = [record for record, dropped in zip(records, after, strict=True) if not dropped]
        temporary = path.with_name(f".{path.name}.tmp")  # not an events.out.* name meanwhile
        with tf.io.TFRecordWriter(str(temporary)) as writer:
            for record in kept:
                writer.write(record)
        os.replace(temporary, path)


def read_records(path: Path) -> tuple[list[bytes], bool]:
    """The whole records of a TFRecord file, and whether a torn one followed them."""
    records: list[bytes] = []
    try:
        for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            records.append(bytes(record))
    except tf.errors.DataLossError:
        return records, True
    return records, False


def _is_summary_after(event: Any, last_step: int) -> bool:
    return event.HasField("summary") and event.step > last_step


class TensorBoardLog(keras.callbacks.Callback):
    """Scalars of every epoch (train and validation metrics, learning rates), sample
    pictures (`image`) and the networks' graphs, under `log_dir`.

    `initial_epoch`: the epochs already trained (a resumed fit); their events are kept and
    any later one is dropped before training continues.
    """

    def __init__(self, log_dir: Path, initial_epoch: int = 0):
        super().__init__()
        try:  # tf.summary writes nothing without it: say so before training, not mid-epoch
            import tensorboard  # noqa: F401
        except ImportError as error:
            raise RunError(
                "TensorBoard logs need the tensorboard package: pip install tensorboard, "
                "or set output.tensorboard: false in the spec"
            ) from error
        self.log_dir = Path(log_dir)
        self.initial_epoch = int(initial_epoch)
        self._writers: dict[str, Any] = {}

    def writer(self, name: str) -> Any:
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(str(self.log_dir / name))
        return self._writers[name]

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.log_dir.is_dir():
            drop_steps_after(self.log_dir, self.initial_epoch)
        if self.initial_epoch == 0:
            self.write_graphs()

    def write_graphs(self) -> None:
        """The Keras graph of each functional network the model holds (subclassed models
        have no static graph; their networks do)."""
        try:  # Keras' own writer of the Graphs tab's model view, not a public name
            from keras.src.callbacks.tensorboard import keras_model_summary
        except ImportError:  # another Keras: the graphs are a nicety, the scalars are not
            return
        networks = [layer for layer in self.model.layers if _graphed(layer)]
        with self.writer("train").as_default():
            for network in networks:
                keras_model_summary(network.name, network, step=0)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        train.update(learning_rates(self.model))
        validation = {k[len("val_") :]: v for k, v in logs.items() if k.startswith("val_")}
        for name, values in (("train", train), ("validation", validation)):
            numbers = {k: n for k, v in values.items() if (n := _as_float(v)) is not None}
            if not numbers:
                continue
            # Leaving as_default() flushes: a watching TensorBoard sees every epoch.
            with self.writer(name).as_default():
                tf.summary.experimental.write_raw_pb(scalars_pb(numbers), step=epoch + 1)

    def image(self, path: Path, epoch: int) -> None:
        """Log the picture at `path` (a PNG) as the sample image of 1-based `epoch`."""
        picture = tf.image.decode_png(tf.io.read_file(str(path)), channels=3)
        with self.writer("train").as_default():
            tf.summary.image(SAMPLES_TAG, picture[tf.newaxis], step=epoch)

    def on_train_end(self, logs: dict | None = None) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def scalars_pb(numbers: dict[str, float]) -> bytes:
    """`epoch_<key>` scalars as one serialized Summary: what `tf.summary.scalar` writes for
    each (a float32 tensor with the scalars plugin's metadata), built without an op each."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb

    summary = Summary()
    for key, number in sorted(numbers.items()):
        summary.value.extend(scalar_pb(f"epoch_{key}", number).value)
    return summary.SerializeToString()


def _graphed(layer: Any) -> bool:
    return isinstance(layer, keras.Model) and type(layer).__name__ in ("Functional", "Sequential")
