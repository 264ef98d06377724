"""Files of drawn samples, written chunk by chunk so memory stays flat: an .npz of float32
samples (and int32 `labels` for a conditional model), a CSV or Parquet table with one row
per sample, or a folder of PNG images, one per sample, in class folders when labelled.

All are byte-for-byte reproducible: the zip members carry zipfile's fixed 1980 date, CSV
values are printed with enough digits (9) to read back as the same float32, Parquet holds
the float32 values themselves, and PNG files carry no time stamp. Samples of a run with a
feature float32 cannot hold in its units (`Preprocessor.output_dtype`, e.g. timestamps)
are written as float64 instead: `dtype` float64, 17 digits, float64 columns.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from gencompile.outputs import atomic_file, writing
from gencompile.runtime.pixels import to_pixels

# The two value types samples are written as: the .npy type and the CSV format of each
# (enough digits to read back the same value).
_FORMATS = {np.dtype(np.float32): ("<f4", "%.9g"), np.dtype(np.float64): ("<f8", "%.17g")}


def _format(dtype: np.dtype | type) -> tuple[str, str]:
    return _FORMATS[np.dtype(dtype)]


def write_npz_stream(
    out: Path,
    name: str,
    shape: tuple[int, ...],
    chunks: Iterator[np.ndarray],
    labels: np.ndarray | None = None,
    dtype: np.dtype | type = np.float32,
) -> Path:
    """An .npz holding one `dtype` array (and `labels` when given), written chunk by chunk
    into the zip (uncompressed, as np.savez writes it) under a temporary name, then
    renamed: never half a file."""
    descr = _format(dtype)[0]
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    with (
        atomic_file(out) as handle,
        zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive,
    ):
        with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_2_0(member, header)
            for chunk in chunks:
                member.write(np.ascontiguousarray(chunk, dtype=descr).tobytes())
        if labels is not None:
            with archive.open("labels.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(labels, dtype="<i4"))
    return out


def write_csv_stream(
    out: Path,
    columns: Sequence[str],
    chunks: Iterator[np.ndarray],
    labels: np.ndarray | None = None,
    dtype: np.dtype | type = np.float32,
) -> Path:
    """A CSV of samples, one row each: the flattened values under `columns` (as `dtype`,
    with the digits that read back the same value), then a `label` column when `labels`
    are given (class indices, as the model was trained with: the run records no class
    names; `score --input` reads the column back by this name)."""
    names = [*columns, "label"] if labels is not None else list(columns)
    cell = _format(dtype)[1]
    start = 0
    with atomic_file(out) as handle:
        handle.write((",".join(_quoted(n) for n in names) + "\n").encode("utf-8"))
        for chunk in chunks:
            rows = np.asarray(chunk, dtype=dtype).reshape(len(chunk), -1)
            cells = np.char.mod(cell, rows.astype(np.float64))
            if labels is not None:
                own = np.asarray(labels[start : start + len(rows)]).astype(str)[:, None]
                cells = np.concatenate([cells, own], axis=1)
            start += len(rows)
            handle.write(("\n".join(",".join(row) for row in cells) + "\n").encode("utf-8"))
    return out


def _quoted(name: str) -> str:
    """A header cell, quoted when it holds a comma, a quote or a line break."""
    if any(c in name for c in ',"\n\r'):
        return '"' + name.replace('"', '""') + '"'
    return name


def write_parquet_stream(
    out: Path,
    columns: Sequence[str],
    chunks: Iterator[np.ndarray],
    labels: np.ndarray | None = None,
    dtype: np.dtype | type = np.float32,
) -> Path:
    """A Parquet table of samples: one `dtype` column per feature under `columns`, then an
    int32 `label` column when `labels` are given; one row group per chunk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    column_type = pa.from_numpy_dtype(np.dtype(_format(dtype)[0]))
    fields = [pa.field(name, column_type) for name in columns]
    if labels is not None:
        fields.append(pa.field("label", pa.int32()))
    schema = pa.schema(fields)
    start = 0
    with atomic_file(out) as handle, pq.ParquetWriter(handle, schema) as writer:
        for chunk in chunks:
            rows = np.asarray(chunk, dtype=dtype).reshape(len(chunk), -1)
            arrays = [pa.array(rows[:, i]) for i in range(rows.shape[1])]
            if labels is not None:
                arrays.append(pa.array(np.asarray(labels[start : start + len(rows)], np.int32)))
            start += len(rows)
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
    return out


def write_image_folder(
    folder: Path,
    chunks: Iterator[np.ndarray],
    count: int,
    value_range: tuple[float, float],
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> Path:
    """One PNG per sample, numbered from 000001 in drawing order: `folder/<class>/N.png`
    with `labels` (`class_names[label]` names the folder), `folder/N.png` without. Values
    map from `value_range` to 0..255 (`to_pixels`). Written into a hidden sibling folder,
    then renamed into place: never half a folder."""
    from PIL import Image

    low, high = (float(v) for v in value_range)
    width = max(6, len(str(count)))
    partial = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        with writing(folder):
            partial.mkdir()
            for name in class_names if labels is not None and class_names else []:
                (partial / name).mkdir()
            index = 0
            for chunk in chunks:
                for image in to_pixels(chunk, (low, high)):
                    index += 1
                    place = partial
                    if labels is not None and class_names:
                        place = partial / class_names[int(labels[index - 1])]
                    buffer = io.BytesIO()
                    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
                        buffer, format="PNG"
                    )
                    (place / f"{index:0{width}d}.png").write_bytes(buffer.getvalue())
            if folder.is_dir():
                folder.rmdir()  # empty: checked before drawing
            partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder
