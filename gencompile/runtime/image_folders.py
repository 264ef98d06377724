"""An image folder read on demand: the file list in memory, the pixels decoded per batch.

A streamed folder keeps the loaded folder's contract (`sources._load_images`): the same
sorted files, class folders as labels, and the same decoding (`sources.decode_image`, PIL),
so its values, fingerprint and batches equal those of the folder loaded whole. What it
holds: the file names (relative, as bytes), 4 bytes an example of labels, and the images
of the batches in flight.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from gencompile.datafiles import STREAM_CHUNK_BYTES, image_listing
from gencompile.errors import RunError
from gencompile.runtime.python_reads import failure_behind, numpy_read
from gencompile.runtime.sources import config_value, decode_image, image_settings

# Images a task of the statistics pass decodes: small enough that the parallel map has
# several tasks in flight, large enough that a task's Python overhead does not count.
IMAGES_PER_TASK = 256


class StreamedImages:
    """The examples of an image folder, decoded on demand: raw float32 (H, W, C) pixels,
    with the interface `streaming.scan` and `streaming.StreamedSplit` read."""

    def __init__(self, source: dict):
        self.height, self.width, self.color = image_settings(source)
        root, names, labels = image_listing(config_value(source, "dir", "data.source (images)"))
        self.root = root
        self.names = np.array([os.fsencode(name) for name in names])  # a few bytes a file
        self.labels = None if labels is None else labels.astype(np.int32)
        channels = 1 if self.color == "grayscale" else 3
        self.element_shape = (self.height, self.width, channels)
        self.origin = "data.source (images)"

    def __len__(self) -> int:
        return len(self.names)

    def file(self, index: int) -> Path:
        return self.root / os.fsdecode(self.names[index])

    def decode(self, indices: np.ndarray) -> np.ndarray:
        """uint8 pixels of the images at `indices`, in that order."""
        if len(indices) == 0:
            return np.zeros((0, *self.element_shape), np.uint8)
        return np.stack(
            [decode_image(self.file(i), self.height, self.width, self.color) for i in indices]
        )

    def read(self, indices: np.ndarray) -> np.ndarray:
        return self.decode(np.asarray(indices, dtype=np.int64)).astype(np.float32)

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first index, uint8 images) in file order: every image decoded once, by a
        parallel tf.data map that keeps the order."""
        per_image = int(np.prod(self.element_shape)) * 4
        rows = max(1, min(IMAGES_PER_TASK, STREAM_CHUNK_BYTES // per_image))
        count = len(self)

        def decode(start: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            indices = tf.range(start, tf.minimum(start + rows, count))
            images = numpy_read(self.decode, [indices], tf.uint8)
            return start, images

        tasks = tf.data.Dataset.range(0, count, rows).map(
            decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        try:
            for start, images in tasks.prefetch(2).as_numpy_iterator():
                yield int(start), images
        except tf.errors.OpError as err:
            failure = failure_behind(err)
            if failure is not None:
                raise failure from None
            raise RunError(f"{self.origin}: cannot read {self.root}: {err.message}") from None
