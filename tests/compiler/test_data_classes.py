"""A conditional model's num_classes against the classes of its data file, at build time:
refused, located, when the compiler can read the labels cheaply (image folders, small CSV
files, small npz label arrays); otherwise left to the runtime. Either way the data config
carries num_classes, so that the run checks every label (tests/runtime/
test_conditional_classes.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gencompile.compiler import data_classes
from gencompile.compiler.lower import lower
from gencompile.errors import SpecError
from gencompile.spec import load_spec

CVAE = """\
spec_version: 1
name: cvae-file
data:
  source: {type: csv, path: lab.csv, label_column: label}
  preprocessing: {standardize: true}
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [8]}
  decoder: {mlp: [8]}
  likelihood: {type: gaussian}
  conditional: {num_classes: 2}
"""
CGAN = """\
spec_version: 1
name: cgan-file
data:
  source: {type: images, dir: pictures, size: [4, 4], color: grayscale}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: gan
  latent_dim: 4
  generator: {mlp: [8]}
  discriminator: {mlp: [8]}
  conditional: {num_classes: 2}
"""
CDIFFUSION = """\
spec_version: 1
name: cdiffusion-file
data:
  source: {type: npz, path: data.npz, labels: y}
  preprocessing: {standardize: true}
model:
  family: diffusion
  timesteps: 10
  denoiser: {type: mlp, hidden: [8], time_embedding: 4}
  sampler: {type: ddpm}
  conditional: {num_classes: 3}
evaluation:
  metrics: [denoising_loss]
"""


def line_of(text: str, snippet: str) -> int:
    assert text.count(snippet) == 1, snippet
    return text[: text.index(snippet)].count("\n") + 1


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        lower(load_spec(path))
    return [str(p) for p in caught.value.problems]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_csv(path: Path, labels: list[str]) -> None:
    rows = "".join(f"{i * 0.5},{-i * 0.25},{label}\n" for i, label in enumerate(labels))
    path.write_text("u,v,label\n" + rows)


@pytest.mark.parametrize(
    "labels, count, what",
    [
        (["a", "b", "c", "a"] * 5, 3, "3 distinct names in column 'label' of lab.csv"),
        (["0", "5", "1"] * 5, 6, "labels up to 5 in column 'label' of lab.csv"),
    ],
    ids=["names", "numbers"],
)
def test_csv_labels_beyond_num_classes_are_refused(
    work: Path, labels: list[str], count: int, what: str
) -> None:
    write_csv(work / "lab.csv", labels)
    (work / "spec.yaml").write_text(CVAE)
    assert problems(work / "spec.yaml") == [
        f"spec.yaml:{line_of(CVAE, 'num_classes')}:30: model.conditional.num_classes: the data "
        f"has {count} classes "
        f"({what}) but num_classes is 2 (set num_classes: {count})"
    ]
    (work / "spec.yaml").write_text(CVAE.replace("num_classes: 2", f"num_classes: {count}"))
    plan = lower(load_spec(work / "spec.yaml"))
    assert plan.num_classes == count and plan.data["num_classes"] == count


def test_image_class_folders_beyond_num_classes_are_refused(work: Path) -> None:
    for name in ("cat", "dog", "eel"):
        (work / "pictures" / name).mkdir(parents=True)
        Image.fromarray(np.zeros((4, 4), np.uint8), "L").save(work / "pictures" / name / "a.png")
    (work / "pictures" / ".hidden").mkdir()  # skipped, as the runtime skips it
    (work / "spec.yaml").write_text(CGAN)
    assert problems(work / "spec.yaml") == [
        f"spec.yaml:{line_of(CGAN, 'num_classes')}:30: model.conditional.num_classes: the data "
        "has 3 classes (3 class folders in pictures) but num_classes is 2 (set num_classes: 3)"
    ]


def test_npz_labels_beyond_num_classes_are_refused(work: Path) -> None:
    y = np.arange(20) % 5
    np.savez(work / "data.npz", x=np.random.default_rng(0).normal(size=(20, 2)), y=y)
    (work / "spec.yaml").write_text(CDIFFUSION)
    assert problems(work / "spec.yaml") == [
        f"spec.yaml:{line_of(CDIFFUSION, 'num_classes')}:30: model.conditional.num_classes: the "
        "data has 5 classes (labels up to 4 in data.npz[y]) but num_classes is 3 (set "
        "num_classes: 5)"
    ]


def test_a_large_csv_is_left_to_the_runtime(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_csv(work / "lab.csv", ["a", "b", "c"] * 5)
    monkeypatch.setattr(data_classes, "SMALL_FILE_BYTES", 10)
    (work / "spec.yaml").write_text(CVAE)
    plan = lower(load_spec(work / "spec.yaml"))  # not read here: the run checks its labels
    assert plan.data["num_classes"] == 2 and plan.data["with_labels"] is True


def test_an_unconditional_models_data_config_holds_no_num_classes(work: Path) -> None:
    write_csv(work / "lab.csv", ["a", "b", "c"] * 5)
    (work / "spec.yaml").write_text(CVAE.replace("  conditional: {num_classes: 2}\n", ""))
    assert "num_classes" not in lower(load_spec(work / "spec.yaml")).data


def test_csv_labels_mixing_numbers_and_text_are_left_to_the_runtime(work: Path) -> None:
    """Counting '?' as a 12th class name would advise num_classes: 12; the runtime refuses
    the column instead, naming the odd cell."""
    write_csv(work / "lab.csv", [str(i % 11) for i in range(30)] + ["?"])
    assert data_classes._csv_classes(str(work / "lab.csv"), "label") is None
    write_csv(work / "lab.csv", [str(i % 11) for i in range(30)])
    found = data_classes._csv_classes(str(work / "lab.csv"), "label")
    assert found is not None and found.count == 11
