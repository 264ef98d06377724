"""`gencompile latent RUN <action>` on tiny runs trained once for the module (1 epoch, tiny
networks): a VAE on digits and a flow on moons. The other families' refusals come before
any weights load, so they are checked on built (untrained) projects of the shipped specs;
their tiny runs are in test_latent_families.py (slow tier).

The arrays are checked for what the action promises: paths end on the codes, slerp keeps
norms between the ends', a traversal row varies one dimension only, a flow reconstructs
exactly; pictures are checked as written PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

TINY_VAE = """\
spec_version: 1
name: latent-vae
seed: 3
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
model:
  family: vae
  latent_dim: 3
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: bernoulli}
training: {epochs: 1}
evaluation: {metrics: []}
output: {samples: {count: 4, format: npz}}
"""

TINY_FLOW = """\
spec_version: 1
name: latent-flow
seed: 4
data:
  source: {type: builtin, name: moons, n_samples: 600, noise: 0.05}
  validation_split: 0.2
  preprocessing: {standardize: true}
  batch_size: 128
model:
  family: flow
  base: {type: normal}
  transforms:
    - {type: affine_coupling, hidden: [8], mask: alternating, repeat: 2}
training: {epochs: 1}
evaluation: {metrics: []}
output: {samples: {count: 4, format: npz}}
"""

SPECS = {"vae": TINY_VAE, "flow": TINY_FLOW}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from gencompile.runs import train

    root = tmp_path_factory.mktemp("latent-runs")
    done = {}
    for key, text in SPECS.items():
        (root / f"{key}.yaml").write_text(text)
        done[key] = train(root / f"{key}.yaml", run_dir=root / key, quiet=True).run_dir
    return done


def latent(run_cli, run: Path, *args: str) -> tuple[int, str, str]:
    return run_cli("latent", str(run), *args)


def arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as files:
        return {name: files[name] for name in files.files}


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def vae(runs: dict[str, Path]) -> Any:
    """The VAE run opened once (model, held-out data, latent space), for direct checks."""
    from gencompile.latent import _open

    return _open(runs["vae"], "arithmetic", runs["vae"].parent / "unused.png", False)


def test_vae_interpolation_ends_are_the_examples_codes(run_cli, runs, vae, tmp_path) -> None:
    out = tmp_path / "i.npz"
    code, stdout, err = latent(run_cli, runs["vae"], "interpolate", "--from", "3", "--to", "17",
                               "--steps", "6", "-o", str(out))  # fmt: skip
    assert code == 0, err
    found = arrays(out)
    assert found["codes"].shape == (1, 6, 3) and found["samples"].shape == (1, 6, 8, 8, 1)
    codes = vae.space.encode(np.asarray(vae.data.x_val)[[3, 17]])
    decoded = vae.units(vae.space.decode(codes))
    np.testing.assert_array_equal(found["codes"][0, 0], codes[0])  # exact ends
    np.testing.assert_array_equal(found["codes"][0, -1], codes[1])
    np.testing.assert_allclose(found["samples"][0, [0, -1]], decoded, atol=1e-5)
    steps = np.diff(found["codes"][0], axis=0)  # a straight line, evenly spaced
    np.testing.assert_allclose(steps, np.broadcast_to(steps[0], steps.shape), atol=1e-5)
    assert "linear interpolation" in stdout and f"wrote {out}" in stdout
    example = tmp_path / "three.npy"  # the same example as a file in the data's units (0..16)
    np.save(example, vae.units(np.asarray(vae.data.x_val)[3:4]))
    again = tmp_path / "again.npz"
    code, _, err = latent(run_cli, runs["vae"], "interpolate", "--from", str(example), "--to",
                          "17", "--steps", "6", "-o", str(again))  # fmt: skip
    assert code == 0, err
    np.testing.assert_allclose(arrays(again)["codes"], found["codes"], atol=1e-5)
    # As an image file (as `sample -o DIR/` writes one): black is 0 and white 16, the
    # digits' range, so pixel p reads as p * 16 / 255.
    from PIL import Image

    picture = tmp_path / "three.png"
    pixels = np.rint(np.load(example)[0, :, :, 0] / 16.0 * 255.0).astype(np.uint8)
    Image.fromarray(pixels).save(picture)
    np.save(example, pixels[None, :, :, None] * (16.0 / 255.0))
    for given, out in ((picture, tmp_path / "png.npz"), (example, tmp_path / "npy.npz")):
        code, _, err = latent(run_cli, runs["vae"], "interpolate", "--from", str(given), "--to",
                              "17", "--steps", "6", "-o", str(out))  # fmt: skip
        assert code == 0, err
    np.testing.assert_allclose(
        arrays(tmp_path / "png.npz")["codes"], arrays(tmp_path / "npy.npz")["codes"], atol=1e-6
    )


def test_an_end_file_of_objects_or_no_numpy_file_is_one_line(run_cli, runs, tmp_path) -> None:
    """--from reads its file as `score --input` does: no traceback for a file numpy cannot
    read as numbers, and nothing written."""
    (tmp_path / "hello.npy").write_text("hello\n")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    for name, why in (("hello.npy", "it starts with neither"), ("objects.npy", "Python objects")):
        out = tmp_path / f"{name}.npz"
        code, _, err = latent(run_cli, runs["vae"], "interpolate", "--from",
                              str(tmp_path / name), "--to", "17", "-o", str(out))  # fmt: skip
        said = " ".join(err.split())
        assert code == 1 and f"--from {tmp_path / name}: not a numeric .npy file" in said
        assert why in said and "Traceback" not in err and not out.exists()


def test_slerp_keeps_norms_between_the_ends(run_cli, runs, vae, tmp_path) -> None:
    out = tmp_path / "s.npz"
    args = ["--random", "-n", "3", "--seed", "11", "--path", "slerp", "--steps", "9"]
    code, _, err = latent(run_cli, runs["vae"], "interpolate", *args, "-o", str(out))
    assert code == 0, err
    codes = arrays(out)["codes"]
    assert codes.shape == (3, 9, 3)
    norms = np.linalg.norm(codes, axis=2)
    low = np.minimum(norms[:, :1], norms[:, -1:]) - 1e-5
    high = np.maximum(norms[:, :1], norms[:, -1:]) + 1e-5
    assert np.all((norms >= low) & (norms <= high))
    linear = np.linspace(codes[:, :1], codes[:, -1:], 9, axis=1)[:, :, 0]
    assert not np.allclose(codes, linear, atol=1e-3)  # an arc, not the chord
    drawn = vae.space.draw(6, 11)  # the prior's draws with --seed 11: the same every time
    np.testing.assert_array_equal(codes[:, 0], drawn[:3])
    np.testing.assert_array_equal(codes[:, -1], drawn[3:])
    assert not np.array_equal(vae.space.draw(6, 12), drawn)


def test_traverse_varies_one_dimension_per_row(run_cli, runs, vae, tmp_path) -> None:
    out = tmp_path / "t.npz"
    code, _, err = latent(run_cli, runs["vae"], "traverse", "--dims", "0,2", "--range", "-2",
                          "2", "--steps", "5", "--example", "4", "-o", str(out))  # fmt: skip
    assert code == 0, err
    found = arrays(out)
    codes, centre = found["codes"], found["center"]
    assert codes.shape == (2, 5, 3) and found["samples"].shape == (2, 5, 8, 8, 1)
    own = vae.space.encode(np.asarray(vae.data.x_val)[4:5])[0]
    np.testing.assert_allclose(centre, own, atol=1e-6)
    for row, dim in enumerate([0, 2]):
        np.testing.assert_array_equal(codes[row, :, dim], np.linspace(-2, 2, 5, dtype=np.float32))
        others = np.delete(codes[row], dim, axis=1)
        np.testing.assert_array_equal(others, np.broadcast_to(np.delete(centre, dim), others.shape))
    picture = tmp_path / "t.png"
    assert latent(run_cli, runs["vae"], "traverse", "-o", str(picture))[0] == 0
    assert is_png(picture)


def test_vae_reconstruct_and_map_pictures(run_cli, runs, tmp_path) -> None:
    out = tmp_path / "r.npz"
    assert latent(run_cli, runs["vae"], "reconstruct", "-n", "5", "-o", str(out))[0] == 0
    found = arrays(out)
    assert found["inputs"].shape == found["reconstructions"].shape == (5, 8, 8, 1)
    assert found["codes"].shape == (5, 3)
    assert found["reconstructions"].min() >= 0.0 and found["reconstructions"].max() <= 16.0
    said = {}
    for action, *args in (["reconstruct"], ["interpolate", "--from", "1,2", "--to", "5"], ["map"]):
        picture = tmp_path / f"{action}.png"
        code, said[action], err = latent(run_cli, runs["vae"], action, *args, "-o", str(picture))
        assert code == 0, err
        assert is_png(picture)
    assert "PCA of 3-D codes" in said["map"]
    assert "first and last columns: the examples" in " ".join(said["interpolate"].split())


def test_vae_arithmetic_moves_codes_by_the_class_mean_difference(run_cli, runs, vae, tmp_path):
    out = tmp_path / "a.npz"
    code, _, err = latent(run_cli, runs["vae"], "arithmetic", "--add", "1", "--subtract",
                               "7", "-n", "4", "--steps", "3", "-o", str(out))  # fmt: skip
    assert code == 0, err
    found = arrays(out)
    assert found["samples"].shape == (4, 3, 8, 8, 1) and found["inputs"].shape == (4, 8, 8, 1)
    np.testing.assert_allclose(found["codes"][:, -1] - found["codes"][:, 0],
                               np.broadcast_to(found["vector"], (4, 3)), atol=1e-5)  # fmt: skip
    labels = np.asarray(vae.data.y_val)
    assert np.all(labels[found["indices"]] == 7)
    codes = vae.space.encode(np.asarray(vae.data.x_val))
    expected = codes[labels == 1].mean(0) - codes[labels == 7].mean(0)
    np.testing.assert_allclose(found["vector"], expected, atol=1e-5)


def test_flow_reconstructs_exactly_and_maps_its_2d_codes(run_cli, runs, tmp_path) -> None:
    out = tmp_path / "r.npz"
    assert latent(run_cli, runs["flow"], "reconstruct", "-n", "20", "-o", str(out))[0] == 0
    found = arrays(out)
    np.testing.assert_allclose(found["reconstructions"], found["inputs"], atol=1e-4)
    assert found["inputs"].shape == (20, 2)
    mapped = tmp_path / "m.npz"
    code, stdout, err = latent(run_cli, runs["flow"], "map", "-o", str(mapped))
    assert code == 0, err
    found = arrays(mapped)
    assert found["codes"].shape == (120, 2) and found["labels"].shape == (120,)
    assert set(np.unique(found["labels"])) == {0, 1}
    np.testing.assert_array_equal(found["points"], found["codes"])  # 2-D: the codes themselves
    assert "the 2-D codes themselves" in stdout
    picture = tmp_path / "m.png"
    assert latent(run_cli, runs["flow"], "map", "-o", str(picture))[0] == 0 and is_png(picture)
    lines = tmp_path / "i.png"
    assert latent(run_cli, runs["flow"], "interpolate", "--from", "0,1", "--to", "2,3",
                  "-o", str(lines))[0] == 0 and is_png(lines)  # fmt: skip


def test_an_output_that_is_an_end_file_is_refused(run_cli, runs, tmp_path) -> None:
    """-o naming the --from (or --to) file is refused before the run is opened: the
    examples in it stay."""
    pair = tmp_path / "pair.npz"
    np.savez(pair, x=np.zeros((1, 8, 8)))
    before = pair.read_bytes()
    for ends in (["--from", str(pair), "--to", "1"], ["--from", "1", "--to", str(pair)]):
        option = ends[0] if ends[1] == str(pair) else ends[2]
        code, _, err = latent(run_cli, runs["vae"], "interpolate", *ends, "-o", str(pair))
        assert code == 1
        said = " ".join(err.split())
        assert f"-o {pair} is the file given as {option} ({pair}): writing it would" in said
        assert pair.read_bytes() == before


def test_an_output_that_is_the_traversed_example_file_is_refused(runs, tmp_path) -> None:
    """traverse's `example` may be a file (read as --from's are): an `out` naming it is
    refused before the run is opened, and the example in it stays."""
    from gencompile.errors import RunError
    from gencompile.latent import traverse

    example = tmp_path / "one.npz"
    np.savez(example, x=np.zeros((1, 8, 8)))
    before = example.read_bytes()
    with pytest.raises(RunError, match="is the file given as --example"):
        traverse(runs["vae"], example, example=str(example))
    assert example.read_bytes() == before


def test_a_traversal_around_a_file_names_the_file(runs, tmp_path) -> None:
    """The caption says what was traversed: the example in the file, not a held-out one."""
    from gencompile.latent import traverse

    example = tmp_path / "one.npz"
    np.savez(example, x=np.zeros((1, 8, 8)))
    result = traverse(runs["vae"], tmp_path / "t.npz", steps=3, example=str(example))
    assert "traversal of" in result.description
    assert " around the code of the example in one.npz: " in result.description
    assert "held-out" not in result.description
    result = traverse(runs["vae"], tmp_path / "h.npz", steps=3, example=4)
    assert " around the code of held-out example 4: " in result.description


def test_wrong_ends_and_dimensions_are_refused(run_cli, runs, tmp_path) -> None:
    out = str(tmp_path / "x.png")
    code, _, err = latent(run_cli, runs["vae"], "interpolate", "--from", "3", "-o", out)
    assert code == 2 and "--from A --to B" in err
    code, _, err = latent(run_cli, runs["vae"], "interpolate", "--from", "3", "--to", "99999",
                          "-o", out)  # fmt: skip
    assert code == 2 and "--to 99999: the held-out split has examples 0..179" in err
    np.save(tmp_path / "bad.npy", np.zeros((1, 7)))
    np.save(tmp_path / "one.npy", np.zeros((8, 8, 1)))  # one example without the batch axis
    for ends, said in [
        (["--from", "nofile.npy", "--to", "1"], "--from: data file not found"),
        (["--from", "1", "--to", str(tmp_path / "bad.npy")], "--to "),
        (["--from", str(tmp_path / "one.npy"), "--to", "1"], "shape (1, 8, 8, 1) (x[None])"),
    ]:
        code, _, err = latent(run_cli, runs["vae"], "interpolate", *ends, "-o", out)
        assert code == 1 and said in " ".join(err.split()), err
        assert "--input" not in err
    code, _, err = latent(run_cli, runs["vae"], "traverse", "--dims", "7", "-o", out)
    assert code == 2 and "dimensions 0..2" in err
    code, _, err = latent(run_cli, runs["flow"], "map", "-o", str(tmp_path / "x.txt"))
    assert code == 2 and "write a picture (.png) or arrays (.npz)" in err
    assert not (tmp_path / "x.png").exists()


REFUSED = [
    ("charlm_arithmetic.yaml", ["interpolate", "--random"], "has no latent space"),
    ("pixelcnn_digits.yaml", ["map"], "has no latent space"),
    ("gan_ring8.yaml", ["reconstruct"], "a GAN has no encoder"),
    ("gan_ring8.yaml", ["map"], "a GAN has no encoder"),
    ("gan_ring8.yaml", ["arithmetic", "--add", "1", "--subtract", "2"], "a GAN has no encoder"),
    ("gan_ring8.yaml", ["interpolate", "--from", "1", "--to", "2"], "a GAN has no encoder"),
    ("gmm_moons.yaml", ["traverse"], "no continuous code to traverse"),
    ("gmm_moons.yaml", ["interpolate", "--random"], "use `map`"),
    ("diffusion_swissroll.yaml", ["map"], "starting noise x_T"),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Projects of the shipped specs, built but not trained: a refusal reads only the lock."""
    from gencompile import build, load_spec

    root = tmp_path_factory.mktemp("latent-built")
    return {
        spec: build(load_spec(ROOT / "specs" / spec), root / spec).directory
        for spec in sorted({case[0] for case in REFUSED})
    }


@pytest.mark.parametrize(
    ("spec", "args", "why"), REFUSED, ids=[f"{c[1][0]}-{c[0]}" for c in REFUSED]
)
def test_refused_saying_why_before_tensorflow(run_cli, built, tmp_path, spec, args, why):
    out = tmp_path / "no.png"
    code, _, err = run_cli("latent", str(built[spec]), *args, "-o", str(out))
    assert code == 2 and why in err, err
    assert not out.exists()


def test_a_refusal_starts_no_tensorflow(built) -> None:
    from tests.test_startup import imported_by

    found = imported_by("latent", str(built["gan_ring8.yaml"]), "map", "-o", "never.png")
    assert found["code"] == 2
    assert not {"tensorflow", "keras"} & set(found["heavy"])


def test_a_vamp_prior_is_centred_at_the_mean_of_its_components() -> None:
    """The VampPrior weighs its components (the posteriors at the pseudo-inputs) equally:
    its centre, where `traverse` starts without --example, is the mean of their means."""
    from types import SimpleNamespace

    from gencompile.runtime.latent import VaeSpace
    from gencompile.runtime.vamp_prior import VampPrior

    def encode(u: Any) -> tuple[Any, Any]:  # a stand-in encoder: the first two features
        return u[:, :2] + 1.0, u[:, :2] * 0.0

    prior = VampPrior(latent_dim=2, data_shape=(3,), pseudo_inputs=4, encode=encode)
    inputs = np.array([[0, 2, 9], [2, 4, 9], [4, 6, 9], [6, 0, 9]], np.float32)
    prior.pseudo_inputs.assign(inputs)
    space = VaeSpace(SimpleNamespace(prior=prior), (3,))  # type: ignore[arg-type]
    np.testing.assert_allclose(space.center(), [4.0, 4.0])


def test_the_legend_of_a_titled_plot_fits_in_the_picture(tmp_path, monkeypatch) -> None:
    """Legends right of the axes (a path's rows, a map's colours) are inside the saved
    figure: its layout makes room for them, and for long row labels."""
    from gencompile.runtime import latent_pictures

    drawn: list[Any] = []

    def write(figure: Any, path: Path) -> Path:
        figure.canvas.draw()
        drawn.append(figure)
        return path

    monkeypatch.setattr(latent_pictures, "_write_figure", write)
    rng = np.random.default_rng(0)
    latent_pictures.save_vector_rows(
        rng.normal(size=(2, 5, 4)), tmp_path / "rows.png", "a path",
        ["a rather long label of path 0", "path 1"], reference=rng.normal(size=(50, 4)),
    )  # fmt: skip
    latent_pictures.save_map(
        rng.normal(size=(60, 2)), tmp_path / "map.png", "a map", rng.integers(0, 3, 60),
        "component", ("PC 1", "PC 2"),
    )  # fmt: skip
    for figure in drawn:
        renderer = figure.canvas.get_renderer()
        legend = figure.axes[0].get_legend().get_window_extent(renderer)
        picture = figure.bbox
        assert picture.x0 <= legend.x0 and legend.x1 <= picture.x1, (legend, picture)
        assert picture.y0 <= legend.y0 and legend.y1 <= picture.y1, (legend, picture)
