"""The first record of a TFRecord shard, read without TensorFlow.

The compiler checks a tfrecord source's features (names, kinds, value counts) against the
spec before anything heavy starts, so a wrong feature name or shape is a located spec
error. A TFRecord file is a sequence of frames (an 8-byte little-endian length, a 4-byte
checksum of it, the data, a 4-byte checksum of the data); each record here is a
`tf.train.Example`, a small protocol buffer decoded below by its wire format (the
checksums are left to TensorFlow, which verifies every record when training reads it).
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from gencompile.datafiles import DataFileError, open_data_file, record_files

FRAME_HEADER = 12  # length (8 bytes) and its checksum (4)
MAX_FIRST_RECORD = 64 << 20  # a first record beyond this is not believed
# tf.train.Feature's fields: which kind of list each holds.
_KINDS = {1: "bytes", 2: "float", 3: "int64"}


@dataclass(frozen=True)
class FeatureInfo:
    kind: str  # "bytes", "float" or "int64"
    count: int  # values in the list


class _Malformed(ValueError):
    pass


def _varint(data: memoryview, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise _Malformed("a truncated number")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def _fields(data: memoryview) -> Iterator[tuple[int, int, memoryview | int]]:
    """(field number, wire type, value) of a protocol buffer message: a length-delimited
    value as its bytes, a varint as its number, fixed-width values as their bytes."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
            yield field, wire, value
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if at + width > len(data):
                raise _Malformed("a truncated value")
            yield field, wire, data[at : at + width]
            at += width
        elif wire == 2:
            length, at = _varint(data, at)
            if at + length > len(data):
                raise _Malformed("a truncated field")
            yield field, wire, data[at : at + length]
            at += length
        else:
            raise _Malformed(f"wire type {wire}")


def _message(value: memoryview | int) -> memoryview:
    """A length-delimited value (a nested message, a string or a packed list); a number in
    its place makes the record malformed."""
    if isinstance(value, int):
        raise _Malformed("a number where a message belongs")
    return value


def _count(kind: str, data: memoryview) -> int:
    """How many values a BytesList, FloatList or Int64List holds (packed or not)."""
    count = 0
    for field, wire, value in _fields(data):
        if field != 1:
            continue
        if kind == "float" and wire == 2:
            count += len(_message(value)) // 4
        elif kind == "int64" and wire == 2:  # packed varints: one ends at each byte < 0x80
            count += sum(1 for byte in _message(value) if byte < 0x80)
        else:
            count += 1
    return count


def example_features(record: bytes) -> dict[str, FeatureInfo]:
    """{name: FeatureInfo} of a serialized tf.train.Example."""
    found = {}
    for field, wire, features in _fields(memoryview(record)):
        if field != 1 or wire != 2:
            continue
        for entry_field, _, entry in _fields(_message(features)):
            if entry_field != 1:
                continue
            name, value = "", memoryview(b"")
            for part, _, content in _fields(_message(entry)):
                if part == 1:
                    name = bytes(_message(content)).decode("utf-8", "replace")
                elif part == 2:
                    value = _message(content)
            for kind_field, _, values in _fields(value):
                if kind_field in _KINDS:
                    kind = _KINDS[kind_field]
                    found[name] = FeatureInfo(kind, _count(kind, _message(values)))
    return found


class _Reader(Protocol):
    """What reading a first record needs of a (possibly decompressing) file."""

    def read(self, size: int, /) -> bytes: ...


def _opened(handle: BinaryIO, compression: str) -> _Reader:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=handle)
    if compression == "zlib":
        return _ZlibReader(handle)
    return handle


class _ZlibReader:
    """Enough of a file over a zlib stream to read a first record."""

    def __init__(self, handle: BinaryIO):
        self.handle, self.inflate, self.buffer = handle, zlib.decompressobj(), b""

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.handle.read(1 << 16)
            if not chunk:
                break
            self.buffer += self.inflate.decompress(chunk)
        found, self.buffer = self.buffer[:size], self.buffer[size:]
        return found


def first_example(path: Path, compression: str = "none") -> tuple[dict[str, FeatureInfo], int]:
    """(the features of a shard's first tf.train.Example, its size in bytes with framing);
    refused when the file is empty or not TFRecord frames of Example records."""
    where = "data.source.files"
    with open_data_file(path, where) as raw:
        try:
            handle = _opened(raw, compression)
            header = handle.read(FRAME_HEADER)
            if not header:
                raise DataFileError(f"{where}: {path} holds no records")
            length = int.from_bytes(header[:8], "little") if len(header) == 12 else -1
            if not 0 < length <= MAX_FIRST_RECORD:
                raise _Malformed("no record frame at its start")
            record = handle.read(length)
            if len(record) < length:
                raise _Malformed("a truncated first record")
            return example_features(record), length + FRAME_HEADER + 4
        except (_Malformed, OSError, EOFError, zlib.error) as err:
            kind = "" if compression == "none" else f"{compression}-compressed "
            raise DataFileError(
                f"{where}: {path} is not a {kind}TFRecord file of tf.train.Example records "
                f"({err}); is data.source.compression right?"
            ) from None


def _decoded_values(x: dict[str, Any]) -> int:
    """Values one record's x takes once decoded."""
    if x.get("type") == "image":
        height, width = (int(v) for v in x["size"])
        return height * width * (1 if x.get("color", "grayscale") == "grayscale" else 3)
    return math.prod(int(d) for d in x["shape"])


def estimated_records(source: dict[str, Any]) -> int:
    """About how many records a tfrecord source holds: the shards' bytes over the size of
    the first record (records of one data set are about the same size; a compressed
    shard's size is its size on disk, so this errs low)."""
    shards = record_files(source["files"])
    _, first = first_example(shards[0], source.get("compression", "none"))
    return max(1, sum(shard.stat().st_size for shard in shards) // first)


def decoded_bytes(source: dict[str, Any]) -> int:
    """About how many bytes a tfrecord source's x takes as float32."""
    return estimated_records(source) * _decoded_values(source["features"]["x"]) * 4
