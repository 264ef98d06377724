"""Files of drawn samples, written chunk by chunk so memory stays flat: an .npz of float32
samples (and int32 `labels` for a conditional model), or a CSV with one row per sample.

Both are byte-for-byte reproducible: the zip members carry zipfile's fixed 1980 date, and
CSV values are printed with enough digits (9) to read back as the same float32.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from gencompile.outputs import atomic_file


def write_npz_stream(
    out: Path,
    name: str,
    shape: tuple[int, ...],
    chunks: Iterator[np.ndarray],
    labels: np.ndarray | None = None,
) -> Path:
    """An .npz holding one float32 array (and `labels` when given), written chunk by chunk
    into the zip (uncompressed, as np.savez writes it) under a temporary name, then
    renamed: never half a file."""
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    with (
        atomic_file(out) as handle,
        zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive,
    ):
        with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_2_0(member, header)
            for chunk in chunks:
                member.write(np.ascontiguousarray(chunk, dtype="<f4").tobytes())
        if labels is not None:
            with archive.open("labels.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(labels, dtype="<i4"))
    return out


def write_csv_stream(
    out: Path,
    columns: Sequence[str],
    chunks: Iterator[np.ndarray],
    labels: np.ndarray | None = None,
) -> Path:
    """A CSV of samples, one row each: the flattened values under `columns`, then a
    `label` column when `labels` are given."""
    names = [*columns, "label"] if labels is not None else list(columns)
    start = 0
    with atomic_file(out) as handle:
        handle.write((",".join(_quoted(n) for n in names) + "\n").encode("utf-8"))
        for chunk in chunks:
            rows = np.asarray(chunk, dtype=np.float32).reshape(len(chunk), -1)
            cells = np.char.mod("%.9g", rows.astype(np.float64))
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
