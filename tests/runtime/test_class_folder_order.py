"""Image class folders named by integers are labelled by value ('2' before '10'), as a CSV
label column of numbers is; other names by their sorted order. `sample -o DIR/` writes
class folders that read back in the same order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gencompile import datafiles
from gencompile.datafiles import class_order, image_listing
from gencompile.runtime.data import load_arrays
from gencompile.runtime.image_folders import StreamedImages
from gencompile.sampling import _class_folder_names

NUM_CLASSES = 11  # read by `_class_folder_names` from the module of the model below


class Model:
    """A stand-in for a generated conditional model: its module (this one) has NUM_CLASSES."""


def image_folder(root: Path, classes: list[str]) -> Path:
    """One 4x4 grey image a class, its pixels the class folder's position in `classes`."""
    for value, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        Image.fromarray(np.full((4, 4), value, np.uint8)).save(root / name / "a.png")
    return root


def test_integer_class_folders_are_labelled_by_value(tmp_path: Path) -> None:
    numbers = [str(k) for k in range(11)]
    root = image_folder(tmp_path / "img", numbers)
    _, names, labels = image_listing(root)
    assert [name.split("/")[0] for name in names] == numbers
    assert labels is not None and labels.tolist() == list(range(11))  # folder 10 is class 10
    source = {"type": "images", "dir": str(root), "size": [4, 4], "color": "grayscale"}
    x, y = load_arrays(source, seed=0)
    assert y is not None and y.tolist() == x[:, 0, 0, 0].astype(int).tolist()  # loaded
    assert StreamedImages(source).labels.tolist() == list(range(11))  # streamed alike


@pytest.mark.parametrize(
    ("found", "ordered"),
    [
        (["10", "9", "2", "-1"], ["-1", "2", "9", "10"]),
        (["01", "1", "0"], ["0", "01", "1"]),  # equal values: by name, none lost
        (["10", "2", "cats"], ["10", "2", "cats"]),  # not all integers: sorted names
        (["dogs", "cats"], ["cats", "dogs"]),
        (["1.5", "10"], ["1.5", "10"]),  # integers only
        (["١", "2"], ["2", "١"]),  # ASCII digits only  # noqa: RUF001
    ],
)
def test_class_order(found: list[str], ordered: list[str]) -> None:
    assert class_order(found) == ordered


def test_single_digit_class_folders_keep_their_labels(tmp_path: Path) -> None:
    """Sorted names and values agree: the listing, the labels and so the data's fingerprint
    are what they were."""
    root = image_folder(tmp_path / "img", ["3", "0", "7", "1"])
    assert datafiles.class_folders(root) == sorted(["3", "0", "7", "1"])


def test_sampled_class_folders_read_back_in_class_order(tmp_path: Path) -> None:
    names = _class_folder_names(Model(), np.zeros(1, np.int32))
    assert names is not None and [int(name) for name in names] == list(range(NUM_CLASSES))
    assert class_order(list(reversed(names))) == names == sorted(names)  # keras's order too
    root = image_folder(tmp_path / "samples", names)
    assert image_listing(root)[2].tolist() == list(range(NUM_CLASSES))
