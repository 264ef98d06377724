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
PROBE_CHUNK = 1 << 10  # compressed bytes fed at a time: the bytes read for the records seen
PROBE_RECORDS = 20_000  # records decoded to learn a compressed shard's records a byte
PROBE_DECODED = 16 << 20  # ... or decompressed bytes, whichever comes first
PROBE_SHARDS = 16  # compressed shards probed, spread over the list, sharing the budget above
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
    found = _first_record(path, compression)
    if found is None:
        raise DataFileError(
            f"data.source.files: {path} holds no records; leave it out of data.source.files"
        )
    return found


def first_nonempty(
    shards: list[Path], compression: str
) -> tuple[Path, dict[str, FeatureInfo], int]:
    """(the first shard holding a record, that record's features, its size): sharded
    exporters leave empty shards, which hold nothing to read, wherever they sort."""
    for shard in shards:
        found = _first_record(shard, compression)
        if found is not None:
            return shard, *found
    raise DataFileError(
        f"data.source.files: none of the {len(shards)} files matched holds a record; "
        "check the pattern and data.source.compression"
    )


def _first_record(path: Path, compression: str) -> tuple[dict[str, FeatureInfo], int] | None:
    """`first_example`, or None for a shard that holds no record."""
    where = "data.source.files"
    with open_data_file(path, where) as raw:
        try:
            handle = _opened(raw, compression)
            header = handle.read(FRAME_HEADER)
            if not header:
                return None
            length = int.from_bytes(header[:8], "little") if len(header) == 12 else -1
            if not 0 < length <= MAX_FIRST_RECORD:
                raise _Malformed("no record frame at its start")
            record = handle.read(length)
            if len(record) < length:
                raise _Malformed("a truncated first record")
            return example_features(record), length + FRAME_HEADER + 4
        except (_Malformed, OSError, EOFError, zlib.error) as err:
            raise _not_records(path, compression, err) from None


def _not_records(path: Path, compression: str, err: Exception) -> DataFileError:
    kind = "" if compression == "none" else f"{compression}-compressed "
    return DataFileError(
        f"data.source.files: {path} is not a {kind}TFRecord file of tf.train.Example "
        f"records ({err}); is data.source.compression right?"
    )


def _decoded_values(x: dict[str, Any]) -> int:
    """Values one record's x takes once decoded."""
    if x.get("type") == "image":
        height, width = (int(v) for v in x["size"])
        return height * width * (1 if x.get("color", "grayscale") == "grayscale" else 3)
    return math.prod(int(d) for d in x["shape"])


def estimated_records(source: dict[str, Any]) -> int:
    """About how many records a tfrecord source holds: the shards' bytes over the size of
    the first record (records of one data set are about the same size); for compressed
    shards, the records a compressed byte holds in the openings of up to PROBE_SHARDS
    shards spread over the list (a compression ratio of 100 is common for sparse values,
    so compressed bytes over a decompressed record would err that much low, and shards
    may compress unlike one another): a shard probed whole counts its records, one probed
    in part by its own ratio, and the others by the probed shards' pooled ratio."""
    shards = record_files(source["files"])
    compression = source.get("compression", "none")
    _, _, first = first_nonempty(shards, compression)
    total = sum(s.stat().st_size for s in shards)
    if compression == "none":
        return max(1, total // first)
    probed = _spread(shards, PROBE_SHARDS)
    found, pooled_records, pooled_read = 0.0, 0.0, 0
    for shard in probed:
        records, read = _records_read(shard, compression, len(probed))
        size = shard.stat().st_size
        found += records if read >= size else size * records / max(1, read)
        pooled_records, pooled_read = pooled_records + records, pooled_read + read
    rest = total - sum(shard.stat().st_size for shard in probed)
    return max(1, round(found + rest * pooled_records / max(1, pooled_read)))


def _spread(shards: list[Path], count: int) -> list[Path]:
    """Up to `count` of `shards`, evenly spread from the first to the last."""
    if len(shards) <= count:
        return list(shards)
    step = (len(shards) - 1) / (count - 1)
    return [shards[round(i * step)] for i in range(count)]


def _records_read(path: Path, compression: str, sharing: int = 1) -> tuple[float, int]:
    """(records decoded, compressed bytes read for them) over the opening records of a
    compressed shard (PROBE_RECORDS or PROBE_DECODED bytes, shared by `sharing` shards
    probed): a whole shard, when small."""
    wbits = 31 if compression == "gzip" else 15  # a gzip or a zlib header
    inflate = zlib.decompressobj(wbits=wbits)
    data, records, read, decoded = bytearray(), 0, 0, 0
    most_records, most_decoded = PROBE_RECORDS // sharing, PROBE_DECODED // sharing
    with open_data_file(path, "data.source.files") as raw:
        try:
            while records < most_records and decoded < most_decoded:
                chunk = raw.read(PROBE_CHUNK)
                if not chunk:
                    break
                read += len(chunk)
                fresh = inflate.decompress(chunk)
                while inflate.eof and inflate.unused_data:  # concatenated gzip members
                    rest, inflate = inflate.unused_data, zlib.decompressobj(wbits=wbits)
                    fresh += inflate.decompress(rest)
                decoded += len(fresh)
                whole, data = _whole_frames(data + fresh)
                records += whole
        except zlib.error as err:
            raise _not_records(path, compression, err) from None
    # a record the probe stopped inside counts for its share
    return records + (len(data) / _frame_size(data) if data else 0.0), read


def _whole_frames(data: bytearray) -> tuple[int, bytearray]:
    """(whole TFRecord frames at the start of `data`, what follows them)."""
    at, count = 0, 0
    while len(data) - at >= FRAME_HEADER:
        end = at + FRAME_HEADER + int.from_bytes(data[at : at + 8], "little") + 4
        if end > len(data):
            break
        at, count = end, count + 1
    return count, data[at:]


def _frame_size(data: bytearray) -> int:
    """The size of the frame `data` begins (its header's length, with framing)."""
    if len(data) < FRAME_HEADER:
        return len(data)
    return FRAME_HEADER + int.from_bytes(data[:8], "little") + 4


def decoded_bytes(source: dict[str, Any]) -> int:
    """About how many bytes a tfrecord source's x takes as float32."""
    return estimated_records(source) * _decoded_values(source["features"]["x"]) * 4
