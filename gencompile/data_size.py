"""Whether a data source streams or loads whole, decided from its size on disk (a file's
header, a folder's file count, shards' framing) without reading the data.

Beside `datafiles` (safe reads) and `tfrecords` (the record framing), on which it builds;
the compiler's memory estimate and the runtime's `load_data` both ask it.
"""

from __future__ import annotations

import math
from typing import Any

import gencompile.datafiles as datafiles  # read at call time: tests patch the threshold
from gencompile.errors import RunError
from gencompile.tfrecords import decoded_bytes

__all__ = ["streams"]


def streams(source: dict[str, Any], cache: str) -> bool:
    """Whether a source is read from its file batch by batch instead of loaded whole:
    `cache: stream` always, `cache: memory` never, `auto` when its values as float32 take
    more than `datafiles.STREAM_THRESHOLD` (a CSV's rows estimated from its first MiB,
    `datafiles.csv_extent`). Only `datafiles.STREAMING_SOURCES` stream; the others load
    whole."""
    if cache not in datafiles.CACHES:
        raise RunError(f"data.cache must be one of {', '.join(datafiles.CACHES)}, got {cache!r}")
    if source.get("type") not in datafiles.STREAMING_SOURCES or cache == "memory":
        return False
    if cache == "stream":
        return True
    return _float32_bytes(source) > datafiles.STREAM_THRESHOLD


def _float32_bytes(source: dict[str, Any]) -> int:
    """About how many bytes a source's values take as float32."""
    kind = source["type"]
    if kind == "csv":  # rows estimated from its first MiB, columns from its header
        rows, width = datafiles.csv_extent(source)
        return rows * width * 4
    if kind == "parquet":  # rows and columns from the footer
        types, rows = datafiles.parquet_schema(source["path"], "data.source.path")
        label = source.get("label_column")
        features = source.get("columns") or [name for name in types if name != label]
        return rows * len(features) * 4
    if kind == "images":  # every image is resized to `size`: no need to decode
        height, width = (int(v) for v in source["size"])
        channels = 1 if source.get("color", "grayscale") == "grayscale" else 3
        return datafiles.count_images(source["dir"]) * height * width * channels * 4
    if kind == "tfrecord":  # shard bytes / first record's bytes x its values
        return decoded_bytes(source)  # reads the framing, not TensorFlow
    shape, _ = datafiles.array_header(source["path"], "data.source.path")
    return int(math.prod(float(d) for d in shape)) * 4
