"""The report's latent pictures (`output.report.latent_pictures`): drawn at the end of
training into RUN/latent/ by the functions `gencompile latent` calls, listed with their
captions in latent/pictures.json and shown in report.md and report.html; none when the
option is off or the family has none, and drawn again when a run is continued."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project
from gencompile.spec import load_spec
from tests.test_latent_families import TINY_GAN

PICTURES = ("reconstructions", "map", "traversal", "interpolations")
FIXTURES = Path(__file__).parent / "compiler" / "fixtures"


def manifest(run: Path) -> dict:
    return json.loads((run / "latent" / "pictures.json").read_text())


def size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size  # (width, height)


@pytest.fixture(scope="module")
def vae_run(trained_vae: Path) -> Path:
    """The session's tiny VAE run (tests/conftest.py): read here, copied before changes."""
    return trained_vae


def test_a_vae_run_draws_its_four_pictures_at_their_sizes(vae_run: Path) -> None:
    latent = vae_run / "latent"
    assert sorted(p.name for p in latent.iterdir()) == sorted(
        [*(f"{name}.png" for name in PICTURES), "pictures.json"]
    )
    # Image grids of 8x8 digits, cells parted by 1 grey pixel, each pixel enlarged by the
    # whole number that makes the grid at least 480 pixels wide.
    # reconstructions: 2 rows x 8 examples -> 17 x 71 pixels, x7
    assert size(latent / "reconstructions.png") == (71 * 7, 17 * 7)
    # traversal: 2 latent dimensions x 7 values -> 17 x 62, x8
    assert size(latent / "traversal.png") == (62 * 8, 17 * 8)
    # interpolations: 4 paths x (the two examples + 8 steps) -> 35 x 89, x6
    assert size(latent / "interpolations.png") == (89 * 6, 35 * 6)
    assert size(latent / "map.png") == (600, 500)  # a 6 x 5 inch plot at 100 dpi
    drawn = manifest(vae_run)
    assert [entry["name"] for entry in drawn["pictures"]] == list(PICTURES)
    assert drawn["skipped"] == []


def test_the_reports_show_each_picture_with_its_caption(vae_run: Path) -> None:
    captions = {e["name"]: e["caption"] for e in manifest(vae_run)["pictures"]}
    assert captions["map"] == (
        "held-out codes (the encoder's mean) coloured by label: the 2-D codes themselves"
    )
    assert captions["interpolations"].startswith(
        "linear interpolation in the encoder's mean, from held-out examples 0-3 to 4-7"
    )
    text = (vae_run / "report.md").read_text()
    assert "## Latent space" in text
    titles = ("Reconstructions", "Latent map", "Latent traversal", "Interpolations")
    for name, title in zip(PICTURES, titles, strict=True):
        assert f"### {title}\n" in text
        assert f"![{title.lower()}](latent/{name}.png)" in text
    assert "held-out examples \\(top\\) and their reconstructions" in text or (
        "held-out examples (top) and their reconstructions" in text
    )
    page = (vae_run / "report.html").read_text()
    assert page.count('<a href="latent/') == 4
    assert "the 2-D codes themselves. latent/map.png</figcaption>" in page


def test_the_picture_is_the_one_the_latent_command_draws(vae_run: Path, run_cli, tmp_path) -> None:
    """One way to draw each: `gencompile latent RUN map` describes the same picture."""
    out = tmp_path / "map.png"
    code, stdout, err = run_cli("latent", str(vae_run), "map", "-o", str(out))
    assert code == 0, err
    caption = {e["name"]: e["caption"] for e in manifest(vae_run)["pictures"]}["map"]
    assert caption in " ".join(stdout.split())


def test_without_a_held_out_split_the_report_says_what_was_not_drawn(
    vae_run: Path, tmp_path: Path
) -> None:
    from gencompile.generated import load_trained_model
    from gencompile.report import write_report
    from gencompile.runtime.data import load_data
    from gencompile.runtime.report_pictures import write_latent_pictures

    model, module = load_trained_model(vae_run)
    data = load_data(module.DATA, seed=module.SEED)
    no_split = replace(data, x_val=data.x_val[:0], y_val=None)
    run = Path(shutil.copytree(vae_run, tmp_path / "run"))
    written = write_latent_pictures(model, no_split, "vae", PICTURES, run)
    assert list(written) == ["traversal"]  # the prior's centre needs no example
    assert sorted(p.name for p in (run / "latent").glob("*.png")) == ["traversal.png"]
    skipped = [e["name"] for e in manifest(run)["skipped"]]
    assert skipped == ["reconstructions", "map", "interpolations"]
    text = write_report(run).read_text()
    assert "![latent map]" not in text and "### Latent traversal" in text
    assert "Not drawn: reconstructions, map, interpolations (fewer than 2 held-out" in text


def test_continuing_a_run_draws_its_pictures_again(vae_run: Path, tmp_path: Path) -> None:
    from gencompile.runs import resume

    run = Path(shutil.copytree(vae_run, tmp_path / "continued"))
    before = {name: (run / "latent" / f"{name}.png").read_bytes() for name in PICTURES}
    resume(run, quiet=True, epochs=2)
    assert [e["name"] for e in manifest(run)["pictures"]] == list(PICTURES)
    after = {name: (run / "latent" / f"{name}.png").read_bytes() for name in PICTURES}
    assert after["reconstructions"] != before["reconstructions"]  # new weights, new picture
    assert after["map"] != before["map"]
    text = (run / "report.md").read_text()
    assert "Continued: 1 -> 2 epochs" in text and "![reconstructions](latent/" in text


def test_with_the_option_off_a_run_draws_none(tiny_vae_spec: Path, tmp_path: Path) -> None:
    from gencompile.runs import train

    overrides = ["output.report.latent_pictures=false"]
    run = train(tiny_vae_spec, overrides, run_dir=tmp_path / "off", quiet=True).run_dir
    assert not (run / "latent").exists()
    assert "report_pictures" not in (run / "tiny_vae" / "train.py").read_text()
    assert "Latent" not in (run / "report.md").read_text()
    assert "Latent" not in (run / "report.html").read_text()


def test_a_gan_draws_interpolations_between_draws_only(tmp_path: Path) -> None:
    from gencompile.runs import train

    (tmp_path / "gan.yaml").write_text(TINY_GAN)
    run = train(tmp_path / "gan.yaml", run_dir=tmp_path / "gan", quiet=True).run_dir
    assert sorted(p.name for p in (run / "latent").iterdir()) == [
        "interpolations.png",
        "pictures.json",
    ]
    (entry,) = manifest(run)["pictures"]
    assert entry["caption"].startswith(
        "linear interpolation in the generator's input z, between random draws (seed 5)"
    )
    assert size(run / "latent" / "interpolations.png") == (550, 500)  # a 5.5 x 5 inch plot
    text = (run / "report.md").read_text()
    assert "### Interpolations" in text and "Reconstructions" not in text


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("vae/dense", PICTURES),
        ("flow/realnvp", ("map", "traversal", "interpolations")),
        ("gan/dense", ("interpolations",)),
        ("mixture/full", ("map",)),
        ("diffusion/mlp", ()),
        ("autoregressive/lstm", ()),
    ],
)
def test_each_family_draws_the_pictures_that_mean_something_for_it(
    fixture: str, expected: tuple[str, ...]
) -> None:
    loaded = load_spec(FIXTURES / f"{fixture}.yaml")
    plan = lower(loaded)
    source = render_project(loaded, plan)[f"{plan.package}/train.py"]
    if expected:
        assert f"LATENT_PICTURES = {expected!r}".replace("'", '"') in source
        assert f'report_pictures.write_latent_pictures(model, data, "{plan.family}"' in source
    else:  # no step, and nothing imported for it
        assert "report_pictures" not in source and "LATENT_PICTURES" not in source


def test_a_two_dimensional_flow_map_shows_its_codes_themselves() -> None:
    """A map of 2-D codes needs no PCA: the points are the codes."""
    from gencompile.runtime.latent_actions import two_dims

    codes = np.arange(12, dtype=np.float32).reshape(6, 2)
    flat = two_dims(codes, "pca", 0, None)
    np.testing.assert_array_equal(flat.points, codes)
    assert flat.how == "the 2-D codes themselves"
