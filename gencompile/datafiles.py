"""User data files, read so that they can neither hang gencompile nor exhaust its memory.

Every file a user names as data (a spec's `data.source`, `impute --input`) goes through
here: it must be a regular file (a FIFO would block the open forever, `/dev/zero` never
ends), it is opened without blocking and checked again on the open descriptor (so a file
swapped for a pipe after the check is still refused), and it is read with a size limit
derived from the memory the machine has left. Data that cannot fit is refused with advice
instead of being read until the kernel kills the process.

Shared by the compiler (shapes, the memory estimate) and the runtime (loading), so it
imports neither of them, nor TensorFlow.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
import re
import stat
import weakref
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from gencompile.errors import RunError

if TYPE_CHECKING:  # NumPy is imported where arrays are read: `validate` needs none
    import numpy as np

# Memory one value of a data set costs once loaded: float32 x, the float64 copies that
# fitting and applying the preprocessing make, the float32 splits and their tensor copy
# (measured: load_data of 25 million standardized float32 values peaked 30 bytes a value).
# A CSV costs the same a value (`csv_extent`), whatever its cells' length; measured with
# cache: memory and standardize, peak growth of load_data: 200,000 x 20 %.6f cells (38 MB)
# 210 MB, estimated 112 MB; 400,000 x 20 0/1 cells (16 MB) 324 MB, estimated 224 MB (the
# text's size x 12 said 456 and 192 MB).
BYTES_PER_LOADED_VALUE = 28
# Memory per byte of a text source read whole (a corpus, `impute --input`): the text and
# its decoded copy (measured for the old CSV loader: a 38 MB CSV took 468 MB, 12.3x).
BYTES_PER_TEXT_BYTE = 12
EMPTY_COMPRESSED_BYTES = 64  # beyond this, a compressed shard is not empty (20 bytes are)
# Data whose float32 values take more than this streams from its file (unless the spec says
# `data.cache: memory`); below it, loading whole is faster and keeps today's exact batches.
STREAM_THRESHOLD = 256 << 20
STREAMING_SOURCES = ("npy", "csv", "parquet", "images", "tfrecord")  # sources that can stream
STREAM_CHUNK_BYTES = 8 << 20  # float32 values a step of the streaming statistics pass reads
# Memory streamed data holds: per example, its split's indices (the permutation, the
# training indices and their tensor copy, int64) and a mask byte; once, the pass's chunk
# (raw, float32, float64 and its squared deviations: 6 chunks) and batches in flight.
BYTES_PER_STREAMED_EXAMPLE = 32
STREAM_FIXED_BYTES = 6 * STREAM_CHUNK_BYTES
MEMORY_VARIABLE = "GENCOMPILE_MEMORY"  # caps what gencompile plans for, e.g. "8G"
HEADER_LIMIT = 1 << 20  # a CSV header row longer than 1 MiB is not a header
# The image files an `images` folder lists: formats PIL decodes without extra libraries.
IMAGE_SUFFIXES = (
    ".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".gif", ".tif", ".tiff",
    ".webp", ".pgm", ".ppm", ".pbm", ".pnm",
)  # fmt: skip
# Other image files: a folder holding one is refused (listing it would silently drop it).
OTHER_IMAGE_SUFFIXES = (
    ".apng", ".avif", ".heic", ".heif", ".ico", ".icns", ".jp2", ".j2k", ".jpx", ".jxl",
    ".psd", ".tga", ".pcx", ".sgi", ".xbm", ".xpm", ".dds", ".exr", ".hdr", ".svg", ".eps",
    ".dng", ".cr2", ".nef", ".arw",
)  # fmt: skip
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class DataFileError(RunError):
    """A data file gencompile refuses to read: not a regular file, or too large for memory."""


def held_out_count(count: int, fraction: float) -> int:
    """Examples `data.validation_split` (`fraction`) holds out of `count`: round(count *
    fraction), halves up, and at least one unless the fraction is 0 (the runtime's seeded
    split, `runtime.pipeline.split_indices`, and the spec's checks both count so)."""
    return 0 if fraction == 0 else max(1, math.floor(count * fraction + 0.5))


def split_holding_out(need: int, count: int) -> float:
    """The smallest 4-decimal validation_split that holds out `need` of `count` examples
    (what the spec's checks and the runtime's refusals advise)."""
    fraction = math.ceil(need / count * 10_000) / 10_000
    while held_out_count(count, fraction) < need:
        fraction += 0.0001
    return round(fraction, 4)


# --------------------------------------------------------------------------- memory


def format_bytes(count: float) -> str:
    """1536 -> '1.5 KiB': sizes in messages, in powers of 1024."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # unreachable; keeps type checkers calm


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes ({} where there is none)."""
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            found[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return found


def _cgroup_room() -> int | None:
    """What a cgroup v2 memory limit leaves (containers report the host's MemAvailable)."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
    except OSError:
        return None
    if not (limit.isdigit() and used.isdigit()):
        return None  # "max": no limit
    return max(int(limit) - int(used), 0)


def _parse_size(text: str) -> int:
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = cleaned[-1] if cleaned[-1:] in _UNITS else ""
    number = cleaned[: len(cleaned) - len(unit)]
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        raise RunError(
            f"{MEMORY_VARIABLE}={text!r} is not a size; write bytes or e.g. 512M, 8G"
        ) from None
    if not value > 0:
        raise RunError(f"{MEMORY_VARIABLE}={text!r} must be a positive size")
    return int(value)


def available_memory() -> tuple[int, str]:
    """(bytes gencompile may plan for, where that figure comes from), for messages.

    MemAvailable (what can be allocated without swapping), else MemTotal, lowered by a
    cgroup limit and by $GENCOMPILE_MEMORY.
    """
    info = _meminfo()
    if "MemAvailable" in info:
        room, origin = info["MemAvailable"], "available (MemAvailable)"
    elif "MemTotal" in info:
        room, origin = info["MemTotal"], "in total (MemTotal)"
    else:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        room, origin = pages * size, "in total"
    cgroup = _cgroup_room()
    if cgroup is not None and cgroup < room:
        room, origin = cgroup, "left under this container's memory limit"
    capped = os.environ.get(MEMORY_VARIABLE)
    if capped:
        limit = _parse_size(capped)
        if limit < room:
            room, origin = limit, f"allowed by {MEMORY_VARIABLE}"
    return room, origin


def ensure_fits(needed: int, what: str, advice: str) -> None:
    """Refuse `what` when it needs more memory than the machine has left."""
    room, origin = available_memory()
    if needed > room:
        raise DataFileError(
            f"{what} needs about {format_bytes(needed)} of memory once loaded, more than the "
            f"{format_bytes(room)} this machine has {origin}; {advice} "
            f"(sources of type {', '.join(STREAMING_SOURCES)} stream unless data.cache is memory)"
        )


# --------------------------------------------------------------------------- files


def describe_mode(mode: int) -> str:
    """What a file system entry is, in words."""
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _stat(path: Path, where: str, kind: str) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError:
        raise DataFileError(
            f"{where}: {kind} not found: {path} (relative paths are resolved against the "
            f"current directory, {Path.cwd()})"
        ) from None
    except OSError as err:
        raise DataFileError(f"{where}: cannot read {path}: {err.strerror or err}") from None


def _refuse_kind(path: Path, mode: int, where: str, wanted: str) -> DataFileError:
    hint = (
        "give a file saved on disk: pipes and devices never end or block, and gencompile "
        "reads data whole"
        if wanted == "a regular file"
        else "give the folder itself"
    )
    return DataFileError(f"{where}: {path} is {describe_mode(mode)}, not {wanted}; {hint}")


def check_file(path: str | Path, where: str) -> Path:
    """The resolved path of an existing regular file, checked without opening it."""
    resolved = Path(path).expanduser().resolve()
    mode = _stat(resolved, where, "data file").st_mode
    if not stat.S_ISREG(mode):
        raise _refuse_kind(resolved, mode, where, "a regular file")
    return resolved


def check_directory(path: str | Path, where: str) -> Path:
    """The resolved path of an existing directory."""
    resolved = Path(path).expanduser().resolve()
    mode = _stat(resolved, where, "data directory").st_mode
    if not stat.S_ISDIR(mode):
        raise _refuse_kind(resolved, mode, where, "a directory")
    return resolved


@contextmanager
def open_data_file(path: str | Path, where: str) -> Iterator[BinaryIO]:
    """Open a regular file for reading; never blocks on a FIFO, even one swapped in late."""
    resolved = check_file(path, where)
    try:
        fd = os.open(resolved, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as err:
        raise DataFileError(f"{where}: cannot open {resolved}: {err.strerror or err}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _refuse_kind(resolved, mode, where, "a regular file")
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as handle:
        yield handle


def _too_large(path: Path, where: str, size: int, per_byte: int, advice: str) -> None:
    ensure_fits(size * per_byte, f"{where}: {path} ({format_bytes(size)})", advice)


def read_text_file(
    path: str | Path, where: str, encoding: str = "utf-8", advice: str = "use a smaller file"
) -> str:
    """A whole text/CSV file, refused before reading when it cannot fit in memory, and read
    with that limit (a file that grows while being read is cut off, not followed)."""
    return _read_limited(path, where, advice).decode(encoding)


def _read_limited(path: str | Path, where: str, advice: str) -> bytes:
    """The bytes of a file read whole as text, within the memory limit (`read_text_file`)."""
    with open_data_file(path, where) as handle:
        resolved = Path(handle.name) if isinstance(handle.name, str) else Path(path)
        size = os.fstat(handle.fileno()).st_size
        _too_large(resolved, where, size, BYTES_PER_TEXT_BYTE, advice)
        room, _ = available_memory()
        limit = room // BYTES_PER_TEXT_BYTE
        data = handle.read(limit + 1)
    if len(data) > limit:
        _too_large(resolved, where, len(data), BYTES_PER_TEXT_BYTE, advice)
    return data


def read_header_row(path: str | Path, where: str, encoding: str = "utf-8-sig") -> list[str]:
    """The first row of a CSV file (quoted fields may hold newlines), reading at most 1 MiB;
    a UTF-8 byte order mark (Excel's "CSV UTF-8") is dropped. Refused when the first MiB is
    not UTF-8 or the row reads as data (every name a number: the file has no header)."""
    return _csv_head(path, where, encoding).row


@dataclass(frozen=True)
class _Head:
    """What the first MiB of a CSV file tells: its header row and the rows below it."""

    row: list[str]  # the header row
    rest: str  # the decoded text after the header row, to the end of the sample
    whole: bool  # whether the sample is the whole file
    size: int  # the file's size in bytes
    header_bytes: int  # bytes of the file up to the end of the header row (with its BOM)


def _csv_head(path: str | Path, where: str, encoding: str = "utf-8-sig") -> _Head:
    """The header row of a CSV file and the sampled text below it (`read_header_row`)."""
    with open_data_file(path, where) as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(HEADER_LIMIT + 1)
    whole = len(head) <= HEADER_LIMIT
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        text = decoder.decode(head[:HEADER_LIMIT], final=whole)
    except UnicodeDecodeError as err:
        raise not_utf8(path, where, head, err) from None
    buffer = io.StringIO(text, newline="")
    try:
        row = next(csv.reader(buffer), [])
    except csv.Error as err:  # e.g. a field beyond csv's 128 KiB limit
        raise DataFileError(
            f"{where}: cannot read the header row of {Path(path)} ({err}); "
            "is it a CSV file with a header row?"
        ) from None
    end = buffer.tell()
    if not whole and end >= len(text):
        raise DataFileError(
            f"{where}: the first row of {Path(path)} is longer than "
            f"{format_bytes(HEADER_LIMIT)}; is it a CSV file with a header row?"
        )
    check_header_names(path, row, where)
    bom = len(head) - len(head.removeprefix(codecs.BOM_UTF8))
    return _Head(row, text[end:], whole, size, bom + len(text[:end].encode("utf-8")))


def csv_extent(source: dict[str, Any]) -> tuple[int, int]:
    """(about how many data rows, how many feature columns) a `csv` source reads, from its
    header and its first MiB only: rows are the file's bytes below the header over the
    sampled rows' mean (exact for a file of at most 1 MiB). A CSV loaded whole costs its
    values (`BYTES_PER_LOADED_VALUE` each), not its text: a 0/1 cell is 2 bytes of text,
    a %.6f one 10, and both load as one float64."""
    head = _csv_head(source["path"], "data.source.path")
    header = [name.strip() for name in head.row]
    label = source.get("label_column")
    columns = source.get("columns")
    width = len(columns) if columns else sum(1 for name in header if name != label)
    return _sampled_rows(head), width


def _sampled_rows(head: _Head) -> int:
    """Data rows of a CSV file estimated from the complete rows of its sample."""
    buffer = io.StringIO(head.rest, newline="")
    rows, end = 0, 0
    try:
        for row in csv.reader(buffer):
            if not head.whole and buffer.tell() >= len(head.rest):
                break  # the sample's last row may be cut
            rows += 1 if row else 0  # a blank line is no row (the loaders skip it)
            end = buffer.tell()
    except csv.Error:  # a cell beyond csv's 128 KiB limit: count the rows before it
        pass
    if head.whole:
        return rows
    below = head.size - head.header_bytes
    sampled = len(head.rest[:end].encode("utf-8"))
    if rows == 0 or sampled == 0:  # rows longer than the sample: fewer than this many
        return max(1, below // max(1, len(head.rest.encode("utf-8"))))
    return max(1, round(below * rows / sampled))


def check_header_names(path: str | Path, header: list[str], where: str) -> None:
    """Refuse a CSV header row whose names are all numbers: it is a data row, and reading
    it as names would silently drop that example."""
    names = [name.strip() for name in header]
    if names and all(name and is_number(name) for name in names):
        raise DataFileError(
            f"{where}: line 1 of {Path(path)} looks like data, not column names "
            f"({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}): add a header row"
        )


def is_number(text: str) -> bool:
    """Whether a CSV cell or column name reads as a number (as float() reads it)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


CELL_SHOWN = 40  # characters of a cell quoted in a message; a longer one is shortened


def cell_text(text: str) -> str:
    """A cell quoted for a message: whole when short, else its start and its length (a
    5 MB cell must not become a 5 MB line on stderr)."""
    if len(text) <= CELL_SHOWN:
        return repr(text)
    return f"{text[: CELL_SHOWN // 2]!r}… ({len(text):,} characters)"


def encoding_advice(err: Exception, encoding: str | None) -> str:
    """What to do about a text file that does not decode: name data.source.encoding."""
    if isinstance(err, UnicodeDecodeError):
        return (
            f"it is not {encoding or 'utf-8'} text; save it as UTF-8, or set "
            "data.source.encoding to the file's encoding, e.g. latin-1"
        )
    return f"is it a text file in {encoding or 'utf-8'}?"


# (first bytes, what the file is, what to do) for files given as CSV that are not text
_NOT_TEXT = (
    (b"\x1f\x8b", "gzip-compressed", "decompress it first (gunzip -k {name})"),
    (b"PAR1", "a Parquet file", "use type: parquet"),
    (b"PK\x03\x04", "a zip archive (or an Excel workbook)", "extract or save it as CSV UTF-8"),
    (b"\x93NUMPY", "an .npy array", "use type: npy"),
)


def not_utf8(
    path: str | Path,
    where: str,
    data: bytes,
    err: UnicodeDecodeError,
    offset: int = 0,
    line: int = 1,
) -> DataFileError:
    """The error naming the line of `path` where bytes `data` (starting at byte `offset`,
    on line `line`, of the file) stop being UTF-8; a binary file gencompile knows by its
    first bytes is named as what it is (re-saving it as UTF-8 would be the wrong advice)."""
    for magic, kind, advice in _NOT_TEXT if offset == 0 else ():
        if data.startswith(magic):
            name = Path(path).name
            return DataFileError(
                f"{where}: {Path(path)} is {kind}, not CSV text; {advice.format(name=name)}"
            )
    at = line + data[: err.start].count(b"\n")
    byte = data[err.start : err.start + 1].hex()
    return DataFileError(
        f"{where}: {Path(path)} line {at} is not UTF-8 text (byte 0x{byte} at byte "
        f"{offset + err.start}); save it as UTF-8 (in Excel: CSV UTF-8)"
    )


def utf8_problem(path: str | Path, where: str) -> DataFileError | None:
    """The error naming the first line of a file that is not UTF-8, or None when all is;
    read block by block, for a file too large to hold."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1
    with open_data_file(path, where) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            held = decoder.getstate()[0]  # a character cut by the previous block (no newline)
            try:
                decoder.decode(block)
            except UnicodeDecodeError as err:  # its offsets count from the held bytes
                return not_utf8(path, where, held + block, err, offset - len(held), line)
            offset += len(block)
            line += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return DataFileError(
                f"{where}: {Path(path)} ends inside a UTF-8 character (line {line}); "
                "save it as UTF-8"
            )
    return None


def read_csv_text(path: str | Path, where: str, advice: str) -> str:
    """A whole CSV file as text (`read_text_file`), its UTF-8 byte order mark dropped and a
    byte that is not UTF-8 refused by its line."""
    data = _read_limited(path, where, advice)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise not_utf8(path, where, data, err) from None


# --------------------------------------------------------------------------- arrays


def _read_header(handle: IO[bytes], origin: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    """(shape, dtype, fortran order) of an .npy stream, reading only its header."""
    import numpy as np

    try:
        version = np.lib.format.read_magic(handle)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read(handle)
    except (ValueError, EOFError, OSError) as err:
        raise DataFileError(f"{origin} is not an .npy array: {err}") from None
    if np.dtype(dtype).hasobject:
        raise DataFileError(
            f"{origin} holds Python objects (pickled data), not numbers; save a numeric array"
        )
    return tuple(int(d) for d in shape), np.dtype(dtype), bool(fortran)


def _check_array(
    shape: tuple[int, ...], dtype: np.dtype, stored: int | None, origin: str, where: str
) -> None:
    """Refuse an array whose header asks for more bytes than are stored or than fit."""
    values = int(math.prod(float(d) for d in shape))  # float: a hostile header cannot wrap
    if stored is not None and values * dtype.itemsize > stored:
        raise DataFileError(
            f"{origin}: the header promises shape {shape} ({format_bytes(values * dtype.itemsize)})"
            f" but the file stores {format_bytes(stored)}; the file is truncated or corrupt"
        )
    ensure_fits(
        values * BYTES_PER_LOADED_VALUE,
        f"{where}: {origin} (shape {shape})",
        "use fewer examples or a smaller element shape",
    )


def array_header(path: str | Path, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of an .npy file from its header; the data is not read."""
    with open_data_file(path, where) as handle:
        if handle.read(4) == b"PK\x03\x04":
            raise DataFileError(
                f"{where}: {Path(path)} is an .npz archive, not a single .npy array; "
                "use {type: npz, path: ..., key: ...}"
            )
        handle.seek(0)
        shape, dtype, _ = _read_header(handle, str(Path(path)))
    return shape, dtype


def _npy_header(
    handle: IO[bytes], origin: str, where: str
) -> tuple[tuple[int, ...], np.dtype, bool]:
    """The header of an .npy file open at its start; an .npz archive is refused by name."""
    if handle.read(4) == b"PK\x03\x04":
        raise DataFileError(
            f"{where}: {origin} is an .npz archive, not a single .npy array; "
            "use {type: npz, path: ..., key: ...}"
        )
    handle.seek(0)
    return _read_header(handle, origin)


def read_npy(path: str | Path, where: str) -> np.ndarray:
    """An .npy array, refused before reading when its header says it cannot fit."""
    with open_data_file(path, where) as handle:
        origin = str(Path(path))
        shape, dtype, fortran = _npy_header(handle, origin, where)
        stored = os.fstat(handle.fileno()).st_size - handle.tell()
        _check_array(shape, dtype, stored, origin, where)
        return _read_body(handle, shape, dtype, fortran, origin)


def _read_body(
    handle: IO[bytes], shape: tuple[int, ...], dtype: np.dtype, fortran: bool, origin: str
) -> np.ndarray:
    import numpy as np

    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    data = handle.read(count * dtype.itemsize)  # bounded by the checked header
    if len(data) < count * dtype.itemsize:
        raise DataFileError(f"{origin}: the array is truncated (shape {shape} in its header)")
    array = np.frombuffer(data, dtype=dtype, count=count)
    if fortran:
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def npz_members(path: str | Path, where: str) -> list[str]:
    """Names of the arrays in an .npz archive (its members without `.npy`)."""
    with open_data_file(path, where) as handle, _zip(handle, path, where) as archive:
        return [n.removesuffix(".npy") for n in archive.namelist()]


def npz_header(path: str | Path, key: str, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of one array of an .npz archive, from its header only."""
    with (
        open_data_file(path, where) as handle,
        _zip(handle, path, where) as archive,
        archive.open(_member(archive, key, path, where)) as member,
    ):
        shape, dtype, _ = _read_header(member, f"{Path(path)}[{key}]")
    return shape, dtype


def read_npz(path: str | Path, keys: list[str], where: str) -> list[np.ndarray]:
    """Arrays of an .npz archive; each refused before reading when it cannot fit."""
    arrays = []
    with open_data_file(path, where) as handle, _zip(handle, path, where) as archive:
        for key in keys:
            info = archive.getinfo(_member(archive, key, path, where))
            origin = f"{Path(path)}[{key}]"
            with archive.open(info) as member:
                shape, dtype, fortran = _read_header(member, origin)
                stored = info.file_size - member.tell()
                _check_array(shape, dtype, stored, origin, where)
                arrays.append(_read_body(member, shape, dtype, fortran, origin))
    return arrays


@contextmanager
def _zip(handle: IO[bytes], path: str | Path, where: str) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError) as err:
        kind = "a single .npy array; use {type: npy}" if _is_npy(handle) else "not a zip archive"
        raise DataFileError(f"{where}: {Path(path)} is not an .npz archive ({kind})") from err
    with archive:
        yield archive


def _is_npy(handle: IO[bytes]) -> bool:
    handle.seek(0)
    return handle.read(6) == b"\x93NUMPY"


def _member(archive: zipfile.ZipFile, key: str, path: str | Path, where: str) -> str:
    names = archive.namelist()
    if f"{key}.npy" in names:
        return f"{key}.npy"
    held = ", ".join(sorted(n.removesuffix(".npy") for n in names)) or "nothing"
    raise DataFileError(f"{where}: {Path(path)} has no array named {key!r}; it holds: {held}")


CACHES = ("auto", "memory", "stream")  # the values of `data.cache`


class MappedNpy:
    """An .npy file whose rows are read on demand with `os.pread`, straight into the batch.

    Not a memory map: a mapped file that is truncated while it is read (`np.save` over the
    data while a long run trains) kills the process with SIGBUS, and touched mapped pages
    count in the resident set. Every read first compares the file's size and modification
    time with those it had when opened, and a short read is refused too: a file rewritten
    in place is one clear error. A file replaced by a rename keeps being read from the one
    opened. Measured, 256 random rows of 400,000 a read: 1.08M rows/s for rows of 64 float32
    (the map: 0.90M), 1.08M for rows of 3 float64 (the map: 1.22M); a streamed epoch through
    tf.data's parallel reads 1.4-1.9x faster than on the map. No lock: a read shares
    nothing but the file descriptor, and a lock held in a `tf.numpy_function` hung the
    interpreter's exit while an iterator was still reading.
    """

    def __init__(self, path: str | Path, where: str):
        import numpy as np

        with open_data_file(path, where) as handle:
            origin = str(Path(path))
            shape, dtype, fortran = _npy_header(handle, origin, where)
            offset, found = handle.tell(), os.fstat(handle.fileno())
            count = math.prod(shape)
            if count * dtype.itemsize > found.st_size - offset:
                raise DataFileError(
                    f"{origin}: the array is truncated (shape {shape} in its header)"
                )
            self._fd = os.dup(handle.fileno())  # kept open: the file as it was opened
        weakref.finalize(self, os.close, self._fd)  # also at exit, unlike __del__
        self._version = (found.st_size, found.st_mtime_ns)
        self._offset, self._fortran = offset, fortran
        self._values = math.prod(shape[1:])  # values a row
        # Fortran order: value r of a row sits at row + len * (r's Fortran position)
        self._columns = np.arange(self._values).reshape(shape[1:], order="F").reshape(-1)
        self.shape, self.dtype, self.origin = shape, dtype, origin

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """Copies of the rows at `indices`, in that order."""
        import numpy as np

        self._check()
        indices = np.asarray(indices, dtype=np.int64)
        if self._fortran:
            found = np.empty((len(indices), self._values), dtype=self.dtype)
            for k, row in enumerate(indices.tolist()):
                for r, column in enumerate(self._columns.tolist()):
                    self._read_into(found[k, r : r + 1], row + len(self) * column)
            return found.reshape(len(indices), *self.shape[1:])
        # one pread a row, joined: measured faster than reading into a preallocated batch
        size, read, fd = self._values * self.dtype.itemsize, os.pread, self._fd
        starts = (indices * size + self._offset).tolist()
        data = bytearray().join([read(fd, size, start) for start in starts])
        if len(data) != size * len(indices):
            raise self._changed()
        return np.frombuffer(data, dtype=self.dtype).reshape(len(indices), *self.shape[1:])

    def chunk(self, start: int, stop: int) -> np.ndarray:
        """A copy of rows start..stop-1."""
        import numpy as np

        self._check()
        found = np.empty((stop - start, self._values), dtype=self.dtype)
        if self._fortran:  # a value of every row at a time: one run of the file each
            for r, column in enumerate(self._columns.tolist()):
                part = np.empty(stop - start, dtype=self.dtype)
                self._read_into(part, start + len(self) * column)
                found[:, r] = part
        else:
            self._read_into(found.reshape(-1), start * self._values)
        return found.reshape(stop - start, *self.shape[1:])

    def _read_into(self, target: np.ndarray, item: int) -> None:
        """Fill contiguous `target` from the array's flat item `item` on."""
        view = target.data.cast("B")
        done = 0
        while done < len(view):  # pread may return less than asked (signals, large reads)
            got = os.preadv(
                self._fd, [view[done:]], self._offset + item * self.dtype.itemsize + done
            )
            if got == 0:
                raise self._changed()
            done += got

    def _check(self) -> None:
        found = os.fstat(self._fd)
        if (found.st_size, found.st_mtime_ns) != self._version:
            raise self._changed()

    def _changed(self) -> RunError:
        return RunError(
            f"{self.origin} changed while it was being read (rewritten or cut since it was "
            "opened: write new data to another file, or replace the file by a rename)"
        )


# --------------------------------------------------------------------------- parquet


def parquet_schema(path: str | Path, where: str) -> tuple[dict[str, str], int]:
    """({column: type name}, row count) of a Parquet file from its footer; no data is read.

    pyarrow is imported here, on first use, so that other sources do not pay for it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open_data_file(path, where) as handle:
        try:
            metadata = pq.ParquetFile(handle).metadata
        except (pa.ArrowException, OSError) as err:
            raise DataFileError(
                f"{where}: {Path(path)} is not a Parquet file ({str(err).splitlines()[0]})"
            ) from None
        schema = metadata.schema.to_arrow_schema()
    return {field.name: str(field.type) for field in schema}, int(metadata.num_rows)


def is_numeric_type(name: str) -> bool:
    """Whether a Parquet column of arrow type `name` holds numbers (features)."""
    return name.startswith(("int", "uint", "float", "double", "halffloat", "bool"))


# --------------------------------------------------------------------------- images


# What macOS leaves in a folder it zipped or browsed: the archive's `__MACOSX/` folder,
# Finder's `.DS_Store` and AppleDouble `._<name>` files (a file's metadata, not its image,
# though `._foo.png` ends like one). Never data: every listing of an images folder below
# skips them, as it skips hidden folders, instead of refusing or decoding them.
def _macos_artifact(name: str) -> bool:
    return name in ("__MACOSX", ".DS_Store") or name.startswith("._")


def _skipped(name: str) -> bool:
    """A folder's name not listed as data: a hidden folder, or a macOS artifact."""
    return name.startswith(".") or _macos_artifact(name)


def _is_image_name(name: str) -> bool:
    return not _macos_artifact(name) and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def count_images(folder: str | Path) -> int:
    """How many image files a folder holds, directly or in its class folders (names only:
    nothing is opened or decoded)."""
    root = check_directory(folder, "data.source.dir")
    count = 0
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_dir():
                if not _skipped(entry.name):
                    with os.scandir(entry.path) as inner:
                        count += sum(1 for e in inner if _is_image_name(e.name))
            elif _is_image_name(entry.name):
                count += 1
    return count


def _image_names(folder: Path, nested: bool = False) -> list[str]:
    """Sorted names of a folder's image files; an image name on a pipe, a device or a
    broken link is refused, not skipped, and so are image files of another type and
    (`nested`: in a class folder) sub-folders holding images: none is dropped unsaid."""
    found, other = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            if _macos_artifact(entry.name):
                continue
            if nested and entry.is_dir() and not _skipped(entry.name):
                _refuse_images_below(Path(entry.path), folder)
            if not _is_image_name(entry.name) or entry.is_dir():
                if os.path.splitext(entry.name)[1].lower() in OTHER_IMAGE_SUFFIXES:
                    other.append(entry.name)
                continue
            if not entry.is_file():
                try:
                    what = describe_mode(os.stat(entry.path).st_mode)
                except OSError:
                    what = "a broken link"
                raise DataFileError(f"data.source.dir: {entry.path} is {what}, not an image file")
            found.append(entry.name)
    if other:
        raise DataFileError(
            f"data.source.dir: {folder} holds {len(other)} image file(s) of a type gencompile "
            f"does not read (e.g. {sorted(other)[0]}); convert them to one of "
            f"{', '.join(IMAGE_SUFFIXES)}, or move them out of the folder"
        )
    return sorted(found)


def _refuse_images_below(sub: Path, folder: Path) -> None:
    """A folder inside a class folder is not read: refused when it holds images."""
    for path, dirs, files in os.walk(sub):
        dirs[:] = sorted(d for d in dirs if not _skipped(d))
        image = next((f for f in sorted(files) if _is_image_name(f)), None)
        if image is not None:
            raise DataFileError(
                f"data.source.dir: {Path(path) / image} is in a folder inside the class folder "
                f"{folder}, and class folders are read one level deep; move the images of "
                f"{sub} into {folder.name} (or into a class folder of their own)"
            )


def class_folders(root: Path) -> list[str]:
    """The class folders of an image folder `root`: its sub-folders, hidden ones and
    `__MACOSX` skipped, in the order of the labels 0, 1, ... (`class_order`)."""
    with os.scandir(root) as entries:
        return class_order([e.name for e in entries if e.is_dir() and not _skipped(e.name)])


_INTEGER = re.compile(r"-?[0-9]+")  # ASCII digits: int() would also take '1_0' and ' 1'


def class_order(names: list[str]) -> list[str]:
    """Class folder names in label order: by value when every name is an integer ('2'
    before '10', as a CSV label column of numbers counts), else sorted."""
    if names and all(_INTEGER.fullmatch(name) for name in names):
        return sorted(names, key=lambda name: (int(name), name))  # '1' and '01': both kept
    return sorted(names)


def image_listing(folder: str | Path) -> tuple[Path, list[str], np.ndarray | None]:
    """(the resolved folder, its image files relative to it in sorted order, int labels or
    None): class folders (`class_folders`' order) are labels 0, 1, ...; a flat folder
    has none. Refused when it holds no images or mixes images with class folders."""
    import numpy as np

    root = check_directory(folder, "data.source.dir")
    suffixes = ", ".join(IMAGE_SUFFIXES)
    classes = class_folders(root)
    if not classes:
        names = _image_names(root)
        if not names:
            raise DataFileError(f"{root} holds no images ({suffixes})")
        return root, names, None
    if _image_names(root):
        raise DataFileError(
            f"{root} mixes image files with class folders; put every image in a class "
            "folder (labels) or use a flat folder of images (no labels)"
        )
    names, counts = [], []
    for label in classes:
        found = _image_names(root / label, nested=True)
        if not found:
            raise DataFileError(f"class folder {root / label} holds no images ({suffixes})")
        names += [f"{label}/{name}" for name in found]
        counts.append(len(found))
    return root, names, np.repeat(np.arange(len(classes)), counts)


# --------------------------------------------------------------------------- tfrecord


# PIL's modes of one channel of 16-bit (or wider integer) pixels: `convert("L")` clamps
# them at 255 instead of rescaling, so they are brought to 8 bits here first.
_WIDE_INTEGER_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
EIGHT_BIT_ADVICE = "save it as 8- or 16-bit"


def eight_bit_image(image: Any, file: str | Path, advice: str = EIGHT_BIT_ADVICE) -> Any:
    """A PIL `image` with 16-bit grey pixels v as v >> 8 (mode L): what TensorFlow's decoder
    gives for the same PNG in a TFRecord (uint16 -> uint8 by `convert_image_dtype`, a
    division by 256 rounded down). Every image file gencompile reads as pixels (an
    `images` folder, loaded or streamed; `score --input`) goes through here, so all read
    the same values. Modes without a fixed range (32-bit integers beyond 16 bits, floats)
    are refused with `advice`: no scaling of them to 0..255 would be faithful."""
    import numpy as np
    from PIL import Image

    if image.mode in _WIDE_INTEGER_MODES:
        values = np.asarray(image)
        if values.size and (int(values.min()) < 0 or int(values.max()) > 65535):
            raise RunError(
                f"cannot read image {file}: its pixels are 32-bit integers (PIL mode "
                f"{image.mode}, values {int(values.min())}..{int(values.max())}) with no "
                f"fixed range to map to 0..255; {advice}"
            )
        return Image.fromarray((values.astype(np.uint32) >> 8).astype(np.uint8), "L")
    if image.mode.startswith("F"):
        raise RunError(
            f"cannot read image {file}: its pixels are floats (PIL mode {image.mode}) with no "
            f"fixed range to map to 0..255; {advice}"
        )
    return image


def _empty_shard(path: Path) -> bool:
    """Whether a shard holds nothing: no bytes, or a gzip or zlib stream of none (an empty
    compressed shard is a few bytes; a record takes 16 at least, so only tiny files are
    read)."""
    import zlib

    size = path.stat().st_size
    if size == 0 or size > EMPTY_COMPRESSED_BYTES:
        return size == 0
    data = path.read_bytes()
    for wbits in (31, 15):  # gzip, zlib
        try:
            inflate = zlib.decompressobj(wbits=wbits)
            if inflate.decompress(data) == b"" and inflate.eof and not inflate.unused_data:
                return True
        except zlib.error:
            continue
    return False


def record_files(pattern: str) -> list[Path]:
    """The regular files a tfrecord source's glob matches, sorted, empty ones left out;
    refused when it matches none (or only empty ones) or names a pipe or a device."""
    import glob

    matched = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
    if not matched:
        raise DataFileError(
            f"data.source.files: no file matches {pattern} (relative paths are resolved "
            f"against the current directory, {Path.cwd()})"
        )
    files = [check_file(name, "data.source.files") for name in matched]
    # Sharded exporters leave empty shards: nothing to read, wherever they sort.
    held = [file for file in files if not _empty_shard(file)]
    if not held:
        raise DataFileError(
            f"data.source.files: {pattern} matches only empty files ({len(files)}); "
            "export the records again"
        )
    return held
