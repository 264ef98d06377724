"""`gencompile.compiler.project.build`: the files of a generated project and its lock.

DESIGN.md ("The generated project") lists what `gencompile build` writes. These tests
check that list exactly, the lock (`spec.lock.json`: hashes of the written bytes, the
resolved spec with defaults filled in and its stable hash), the refusal of custom code
without `allow_custom_code`, that every generated Python file compiles and passes
`ruff check --select E9,F`, that every project is clean under its own pyproject's ruff
rules, and that building imports no TensorFlow. Problems found in
lowering (layer names, data files, project names) are at the end.
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gencompile._version import __version__
from gencompile.compiler.project import build, canonical_json
from gencompile.errors import SpecError
from gencompile.spec import load_spec, load_spec_text

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]
SPECS = sorted((REPO / "specs").glob("*.yaml"))
FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*/*.yaml"))
RUFF = Path(sys.executable).with_name("ruff")

MOONS = """\
spec_version: 1
name: moons-default
data:
  source: {type: builtin, name: moons}
  preprocessing: {standardize: true}
model:
  family: vae
  latent_dim: 2
  likelihood: {type: gaussian}
  encoder:
    LAYERS
  decoder: {mlp: [16]}
"""


def moons(layers: str = "mlp: [16]", name: str = "moons-default") -> str:
    text = MOONS.replace("LAYERS", layers)
    return text.replace("name: moons-default", f"name: {name}")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def written(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    directory = tmp_path_factory.mktemp("build") / "vae_digits"
    return build(load_spec(REPO / "specs" / "vae_digits.yaml"), directory)


# -- the files ---------------------------------------------------------------------------------


def test_build_writes_exactly_the_documented_files(digits):
    assert written(digits.directory) == {
        "README.md",
        "pyproject.toml",
        "spec.yaml",
        "spec.lock.json",
        "vae_digits/__init__.py",
        "vae_digits/model.py",
        "vae_digits/train.py",
        "tests/test_model.py",
    }


def test_spec_yaml_is_the_source_verbatim(digits):
    source = REPO / "specs" / "vae_digits.yaml"
    assert (digits.directory / "spec.yaml").read_bytes() == source.read_bytes()


def test_pyproject_pins_gencompile_and_tensorflow(digits):
    pyproject = tomllib.loads((digits.directory / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    assert project["name"] == "vae_digits"
    requirements = {r.split("==")[0]: r.split("==")[1] for r in project["dependencies"]}
    assert requirements["gencompile"] == __version__
    assert requirements["tensorflow"] == digits.lock["versions"]["tensorflow"]
    assert all("==" in r for r in project["dependencies"])
    assert pyproject["tool"]["setuptools"]["packages"] == ["vae_digits"]


def test_readme_is_a_model_card_of_the_plan(digits):
    readme = (digits.directory / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# vae-digits\n")
    assert f"{sum(n.params for n in digits.plan.networks):,}" in readme
    assert "python -m vae_digits.train" in readme
    for network in digits.plan.networks:
        for layer in network.layers:
            assert f"| {layer.name} |" in readme


def test_every_generated_python_file_compiles(digits):
    for relative in written(digits.directory):
        if relative.endswith(".py"):
            source = (digits.directory / relative).read_text(encoding="utf-8")
            compile(source, relative, "exec", dont_inherit=True)


def test_no_temporary_files_are_left_behind(digits, tmp_path):
    build(load_spec(REPO / "specs" / "vae_digits.yaml"), tmp_path)
    build(load_spec(REPO / "specs" / "vae_digits.yaml"), tmp_path)  # over an existing build
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert written(tmp_path) == written(digits.directory)


# -- the lock -------------------------------------------------------------------------------------


def test_lock_on_disk_equals_the_returned_lock(digits):
    on_disk = json.loads((digits.directory / "spec.lock.json").read_text(encoding="utf-8"))
    assert on_disk == digits.lock


def test_lock_hashes_are_the_sha256_of_the_written_files(digits):
    files = digits.lock["files"]
    assert set(files) == written(digits.directory) - {"spec.lock.json"}
    for relative, digest in files.items():
        assert digest == sha256_file(digits.directory / relative), relative
    assert digits.lock["spec_sha256"] == sha256_file(digits.directory / "spec.yaml")


def test_lock_records_the_run_identity(digits):
    lock = digits.lock
    assert lock["lock_version"] == 2
    assert (lock["name"], lock["family"], lock["seed"]) == ("vae-digits", "vae", 42)
    assert lock["versions"]["gencompile"] == __version__
    assert {"python", "tensorflow", "keras", "numpy"} <= set(lock["versions"])


def test_the_lock_checksum_covers_every_field_and_is_what_the_file_holds(digits):
    from gencompile.compiler.project import lock_checksum

    written = json.loads((digits.directory / "spec.lock.json").read_text())
    assert written == digits.lock
    assert written["lock_sha256"] == lock_checksum(written)
    for field in sorted(set(written) - {"lock_sha256"}):
        edited = dict(written, **{field: "edited"})
        assert lock_checksum(edited) != written["lock_sha256"], field


def test_resolved_spec_has_every_default_filled_in(tmp_path):
    lock = build(load_spec_text(moons()), tmp_path).lock
    resolved = lock["resolved_spec"]
    optimizer = resolved["training"]["optimizer"]
    assert optimizer == {
        "type": "adam",
        "learning_rate": 1e-3,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "clipnorm": None,
        "clipvalue": None,
        "global_clipnorm": None,
    }
    assert resolved["data"]["source"] == {
        "type": "builtin",
        "name": "moons",
        "n_samples": 3000,
        "noise": 0.05,
    }
    assert resolved["evaluation"]["metrics"] == ["elbo", "iwae_nll"]
    assert resolved["model"]["prior"] == {"type": "normal"}
    assert resolved["model"]["likelihood"] == {"type": "gaussian", "sigma": "learned"}
    assert resolved["seed"] == 42 and resolved["data"]["batch_size"] == 128
    assert (
        lock["resolved_spec_sha256"]
        == hashlib.sha256(canonical_json(resolved).encode()).hexdigest()
    )


def test_resolved_spec_hash_is_stable_and_follows_overrides(tmp_path):
    spec = REPO / "specs" / "vae_digits.yaml"
    first = build(load_spec(spec), tmp_path / "a").lock
    second = build(load_spec(spec), tmp_path / "b").lock
    assert first["resolved_spec_sha256"] == second["resolved_spec_sha256"]
    assert first["files"] == second["files"]  # the generated bytes are deterministic
    shorter = build(load_spec(spec, ["training.epochs=3"]), tmp_path / "c").lock
    assert shorter["resolved_spec"]["training"]["epochs"] == 3
    assert shorter["resolved_spec_sha256"] != first["resolved_spec_sha256"]
    # the project's spec.yaml is the spec it was built from: the override applied
    assert shorter["spec_sha256"] != first["spec_sha256"]
    assert "epochs: 3" in (tmp_path / "c" / "spec.yaml").read_text()
    reseeded = build(load_spec(spec, ["seed=7"]), tmp_path / "d").lock
    assert reseeded["resolved_spec_sha256"] not in {
        first["resolved_spec_sha256"],
        shorter["resolved_spec_sha256"],
    }


def test_writing_a_default_explicitly_does_not_change_the_resolved_hash(tmp_path):
    implicit = build(load_spec_text(moons()), tmp_path / "a").lock
    explicit_text = moons() + "seed: 42\ntraining: {optimizer: {type: adam, beta_1: 0.9}}\n"
    explicit = build(load_spec_text(explicit_text), tmp_path / "b").lock
    assert explicit["resolved_spec_sha256"] == implicit["resolved_spec_sha256"]
    assert explicit["spec_sha256"] != implicit["spec_sha256"]


# -- custom code -------------------------------------------------------------------------------

CUSTOM = moons(
    "layers:\n"
    "      - {type: dense, units: 8}\n"
    "      - type: custom\n"
    "        ref: mypkg.layers:Scale\n"
    "        args: {factor: 2.0, mode: fast}\n"
    "        output_shape: [8]"
)


def test_custom_layers_are_refused_without_allow_custom_code(tmp_path):
    with pytest.raises(SpecError) as err:
        build(load_spec_text(CUSTOM, "spec.yaml"), tmp_path / "out")
    (problem,) = err.value.problems
    assert "--allow-custom-code" in str(problem)
    assert problem.path == "model.encoder.layers[1]"
    assert (problem.file, problem.line) == ("spec.yaml", 13)
    assert not (tmp_path / "out").exists()  # nothing is written


def test_custom_layers_are_imported_under_an_alias_with_allow_custom_code(tmp_path):
    result = build(load_spec_text(CUSTOM), tmp_path, allow_custom_code=True)
    tree = ast.parse((tmp_path / "moons_default" / "model.py").read_text(encoding="utf-8"))
    imports = [
        (node.module, [(a.name, a.asname) for a in node.names])
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "mypkg.layers"
    ]
    assert imports == [("mypkg.layers", [("Scale", "custom_mypkg_layers_Scale")])]
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "custom_mypkg_layers_Scale"
    ]
    (call,) = calls
    assert {k.arg: ast.literal_eval(k.value) for k in call.keywords} == {
        "factor": 2.0,
        "mode": "fast",
        "name": "scale_1",
    }
    assert result.plan.networks[0].layers[1].params is None


CUSTOM_CLASH = moons(
    "layers:\n      - {type: custom, ref: 'moda.blocks:Block', output_shape: [8]}",
    name="custom-clash",
).replace(
    "decoder: {mlp: [16]}",
    "decoder:\n    layers:\n      - {type: custom, ref: 'modb.blocks:Block', output_shape: [8]}",
)


def test_custom_classes_of_one_name_from_two_modules_get_two_aliases(tmp_path):
    """One alias for both would let the second import rebind the first: the encoder would
    silently be built from modb's class."""
    result = build(load_spec_text(CUSTOM_CLASH), tmp_path, allow_custom_code=True)
    source = (result.directory / "custom_clash" / "model.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    imports = {
        (node.module, a.name): a.asname
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module in ("moda.blocks", "modb.blocks")
        for a in node.names
    }
    assert imports == {
        ("moda.blocks", "Block"): "custom_moda_blocks_Block",
        ("modb.blocks", "Block"): "custom_modb_blocks_Block",
    }
    called = {
        func.name: {
            node.func.id
            for node in ast.walk(func)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "").startswith("custom_")
        }
        for func in tree.body
        if isinstance(func, ast.FunctionDef) and func.name in ("build_encoder", "build_decoder")
    }
    assert called == {
        "build_encoder": {"custom_moda_blocks_Block"},
        "build_decoder": {"custom_modb_blocks_Block"},
    }


# -- lint of generated code ----------------------------------------------------------------------

EXTRA_CASES = {
    "custom": (CUSTOM, True),
    "custom-clash": (CUSTOM_CLASH, True),
    "sequence-layers": (
        moons(
            "layers:\n"
            "      - {type: dense, units: 32}\n"
            "      - {type: reshape, target_shape: [4, 8]}\n"
            "      - {type: transformer_block, num_heads: 2, key_dim: 4, ff_dim: 16}\n"
            "      - {type: multi_head_attention, num_heads: 2, key_dim: 4, causal: true}\n"
            "      - {type: conv1d, filters: 4, kernel_size: 3, dilation_rate: 2}\n"
            "      - {type: layer_norm}\n"
            "      - {type: gru, units: 8, return_sequences: true}\n"
            "      - {type: lstm, units: 8}",
            name="sequence-layers",
        ),
        False,
    ),
    "image-layers": (
        textwrap.dedent(
            """\
            spec_version: 1
            name: image-layers
            data:
              source: {type: builtin, name: digits}
              preprocessing: {scale: [0.0, 1.0]}
            model:
              family: vae
              encoder:
                layers:
                  - {type: spectral_norm, layer: {type: conv2d, filters: 8, kernel_size: 3}}
                  - {type: group_norm, groups: 4}
                  - {type: avg_pool2d}
                  - {type: residual, layers: [{type: conv2d, filters: 8, kernel_size: 3}]}
                  - {type: global_avg_pool2d}
                  - {type: spectral_norm, layer: {type: dense, units: 8}}
              decoder:
                layers:
                  - {type: dense, units: 64}
                  - {type: reshape, target_shape: [4, 4, 4]}
                  - {type: conv2d_transpose, filters: 4, kernel_size: 3, strides: 2}
                  - {type: batch_norm}
                  - {type: activation, activation: gelu}
            training:
              regularization: {l1: 1.0e-5}
            """
        ),
        False,
    ),
}


# Example specs with the choices that make the longest generated lines: the longest project
# name (64 characters: the package in docstrings, __init__.py and the tests' import) and a
# VAE whose optimizer steps a posterior flow and a learned prior (its step-3 comment).
LONGEST_NAME = "n" * 64
LINT_VARIANTS: dict[str, tuple[str, list[str]]] = {
    **{
        f"long-name-{spec}": (spec, [f"name={LONGEST_NAME}"])
        for spec in (
            "vae_moons",
            "gan_ring8",
            "vq_vae_digits",
            "flow_moons",
            "diffusion_ring8",
            "gmm_moons",
            "gmm_moons_gradient",
            "charlm_arithmetic",
            "pixelcnn_digits",
        )
    },
    "long-name-bgmm_blobs": ("bgmm_blobs", [f"name={LONGEST_NAME}"]),
    "vae-planar-mixture-prior": ("vae_moons", ["model.posterior={type: planar}"]),
    "vae-iaf-mixture-prior": ("vae_digits_iaf", ["model.prior={type: mixture_of_gaussians}"]),
    "vae-radial-mixture-frozen": (
        "vae_moons",
        [
            "model.posterior={type: radial}",
            "model.encoder={layers: [{type: dense, units: 8, trainable: false}, "
            "{type: dense, units: 8}]}",
        ],
    ),
}


@pytest.fixture(scope="module")
def projects(tmp_path_factory, example_overrides) -> dict[str, Path]:
    """Every example spec, golden fixture, extra case and lint variant, built side by side."""
    root = tmp_path_factory.mktemp("projects")
    built = {}
    for spec_file in [*SPECS, *FIXTURES]:
        name = f"{spec_file.parent.name}-{spec_file.stem}"
        loaded = load_spec(spec_file, example_overrides(spec_file))
        built[name] = build(loaded, root / name).directory
    for name, (text, allow) in EXTRA_CASES.items():
        built[name] = build(load_spec_text(text), root / name, allow_custom_code=allow).directory
    for name, (spec, overrides) in LINT_VARIANTS.items():
        spec_file = REPO / "specs" / f"{spec}.yaml"
        loaded = load_spec(spec_file, [*example_overrides(spec_file), *overrides])
        built[name] = build(loaded, root / name).directory
    return built


def python_files(projects: dict[str, Path]) -> list[Path]:
    return sorted(p for directory in projects.values() for p in directory.rglob("*.py"))


def test_every_generated_file_compiles(projects):
    for path in python_files(projects):
        compile(path.read_text(encoding="utf-8"), str(path), "exec", dont_inherit=True)


def run_ruff(*args: str) -> subprocess.CompletedProcess:
    assert RUFF.exists(), f"ruff (a dev dependency) is missing beside {sys.executable}"
    return subprocess.run(
        [str(RUFF), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_generated_code_passes_ruff_errors_and_pyflakes(projects):
    files = [str(p) for p in python_files(projects)]
    result = run_ruff("check", "--isolated", "--no-cache", "--select", "E9,F", *files)
    assert result.returncode == 0, result.stdout + result.stderr


PROJECT_NAMES = [f"{p.parent.name}-{p.stem}" for p in [*SPECS, *FIXTURES]] + list(EXTRA_CASES)


@pytest.mark.parametrize("name", [*PROJECT_NAMES, *LINT_VARIANTS])
def test_generated_project_passes_ruff_under_its_own_config(projects, name):
    """`ruff check` run in the project folder, so with the generated pyproject.toml's rules
    (pinned there: a newer ruff's defaults do not change what clean means). A user who runs
    their linter on a fresh project sees no finding."""
    directory = projects[name]
    assert "[tool.ruff.lint]" in (directory / "pyproject.toml").read_text(encoding="utf-8")
    result = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--output-format", "concise", "."],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr


# -- no TensorFlow -----------------------------------------------------------------------------


def test_build_imports_no_tensorflow(tmp_path, example_overrides):
    """In a fresh interpreter: building a project must not import TensorFlow or Keras."""
    specs = [(str(p), example_overrides(p)) for p in SPECS]
    script = textwrap.dedent(
        f"""
        import sys
        from gencompile.compiler.project import build
        from gencompile.spec import load_spec
        for spec, overrides in {specs!r}:
            build(load_spec(spec, overrides), {str(tmp_path)!r} + "/" + spec.rsplit("/", 1)[-1])
        heavy = sorted(m for m in ("tensorflow", "keras", "jax", "torch") if m in sys.modules)
        print(heavy)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- lowering problems: names, data files --------------------------------------------------------


def builder_calls(source: str, builder: str) -> tuple[list[str], list[str]]:
    """(Keras layer names, assigned variable names) of one builder function, in order."""
    tree = ast.parse(source)
    (func,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == builder]
    names = [
        ast.literal_eval(k.value)
        for node in ast.walk(func)
        if isinstance(node, ast.Call)
        for k in node.keywords
        if k.arg == "name"
        and not (isinstance(node.func, ast.Attribute) and node.func.attr in ("Input", "Model"))
    ]
    targets = [t.id for n in func.body if isinstance(n, ast.Assign) for t in n.targets]
    return names, targets


def build_or_refuse(text: str, tmp_path: Path, allow_custom_code: bool = False) -> str | None:
    """The generated model.py, or None when the build refuses the spec with a SpecError."""
    try:
        result = build(load_spec_text(text), tmp_path, allow_custom_code=allow_custom_code)
    except SpecError:
        return None
    return (result.directory / result.plan.package / "model.py").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "layers",
    [
        "layers:\n      - {type: dense, units: 8, name: z_mean}",
        "layers:\n      - {type: dense, units: 8}\n"
        "      - {type: residual, layers: [{type: dense, units: 8, name: dense_1}]}",
    ],
    ids=["named-like-a-head", "nested-name-equals-an-auto-name"],
)
def test_generated_layer_names_are_unique_in_a_network(tmp_path, layers):
    source = build_or_refuse(moons(layers), tmp_path)
    if source is not None:
        names, _ = builder_calls(source, "build_encoder")
        assert len(names) == len(set(names)), names


# (spec, override naming a layer like an input of its network, where the refusal points)
INPUT_NAMES = {
    "vae-encoder-x": ("vae_moons", "model.encoder", "dense, units: 8", "x"),
    "vae-decoder-z": ("vae_moons", "model.decoder", "dense, units: 8", "z"),
    "cvae-encoder-y": ("cvae_digits", "model.encoder", "dense, units: 8", "y"),
    "gan-generator-z": ("gan_ring8", "model.generator", "dense, units: 8", "z"),
    "gan-discriminator-x": ("gan_ring8", "model.discriminator", "dense, units: 8", "x"),
    "cgan-discriminator-y": ("cgan_digits", "model.discriminator", "dense, units: 8", "y"),
    "vq-vae-decoder-z_q": (
        "vq_vae_digits",
        "model.decoder",
        "conv2d, filters: 8, kernel_size: 3",
        "z_q",
    ),
}


@pytest.mark.parametrize("case", sorted(INPUT_NAMES))
def test_a_layer_named_like_a_network_input_is_a_located_spec_error(tmp_path, case):
    """keras.Input(name=...) is a layer too: a spec layer of the same name would build a
    model Keras refuses at training time, so lowering refuses it as it refuses head names."""
    spec, network, layer, name = INPUT_NAMES[case]
    layers = f"[{{type: {layer}, name: {name}}}]"
    if spec == "vq_vae_digits":  # the decoder must end at the data's height and width
        layers = layers[:-1] + ", {type: conv2d_transpose, filters: 8, kernel_size: 3, strides: 2}]"
    # a --set mapping merges: null first, so that the layers replace the spec's mlp
    overrides = [f"{network}=null", f"{network}={{layers: {layers}}}"]
    loaded = load_spec(REPO / "specs" / f"{spec}.yaml", overrides)
    with pytest.raises(SpecError) as err:
        build(loaded, tmp_path / "out")
    (problem,) = err.value.problems
    assert problem.path == f"{network}.layers[0].name"
    assert problem.message.startswith(f"'{name}' names a layer the compiler adds")
    assert problem.hint == "choose another name"
    assert not (tmp_path / "out").exists()


def test_a_coupling_layer_named_like_its_conditioner_input_is_refused(tmp_path):
    hidden = "{layers: [{type: dense, units: 8, name: x_masked}]}"
    override = f"model.transforms=[{{type: affine_coupling, hidden: {hidden}}}]"
    with pytest.raises(SpecError) as err:
        build(load_spec(REPO / "specs" / "flow_moons.yaml", [override]), tmp_path / "out")
    (problem,) = err.value.problems
    assert problem.path == "model.transforms[0].hidden.layers[0].name"
    assert "'x_masked' names a layer the compiler adds" in problem.message


def test_nested_residual_skip_variables_do_not_collide(tmp_path):
    layers = (
        "layers:\n"
        "      - type: residual\n"
        "        name: a-b\n"
        "        layers:\n"
        "          - {type: dense, units: 2}\n"
        "          - {type: residual, name: a_b, layers: [{type: dense, units: 2}]}"
    )
    source = build_or_refuse(moons(layers), tmp_path)
    if source is not None:
        _, targets = builder_calls(source, "build_encoder")
        skips = [t for t in targets if t.startswith("skip_")]
        assert len(skips) == len(set(skips)) == 2, targets


def test_custom_argument_named_name_is_refused_or_compiles(tmp_path):
    text = moons(
        "layers:\n      - {type: custom, ref: 'pkg.mod:Cls', args: {name: mine}, output_shape: [4]}"
    )
    source = build_or_refuse(text, tmp_path, allow_custom_code=True)
    if source is not None:
        compile(source, "model.py", "exec", dont_inherit=True)


def test_custom_ref_with_a_trailing_newline_is_a_spec_error():
    text = moons('layers:\n      - {type: custom, ref: "pkg.mod:Cls\\n", output_shape: [4]}')
    with pytest.raises(SpecError):
        load_spec_text(text)


@pytest.mark.parametrize("name", ["pathlib", "json", "random"])
def test_spec_names_that_shadow_standard_modules_are_refused(name):
    with pytest.raises(SpecError):
        load_spec_text(moons(name=name))


def data_spec(source: str) -> str:
    return MOONS.replace("{type: builtin, name: moons}", source).replace("LAYERS", "mlp: [8]")


BAD_FILES: dict[str, tuple[str, bytes | None]] = {
    "npz-not-a-zip": ("npz", b"not a zip archive"),
    "npy-with-pickled-objects": ("npy", None),
    "csv-not-utf8": ("csv", b"\xff\xfe,a\n1,2\n"),
    "csv-empty": ("csv", b""),
    "path-is-a-directory": ("npz", None),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_unreadable_data_files_are_spec_errors(tmp_path, case):
    kind, content = BAD_FILES[case]
    path = tmp_path / f"data.{kind}"
    if case == "path-is-a-directory":
        path.mkdir()
    elif case == "npy-with-pickled-objects":
        import numpy as np

        np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    else:
        path.write_bytes(content)
    with pytest.raises(SpecError) as err:
        build(load_spec_text(data_spec(f"{{type: {kind}, path: '{path}'}}")), tmp_path / "out")
    assert err.value.problems[0].path.startswith("data.source")


def test_missing_data_file_is_a_located_spec_error(tmp_path):
    text = data_spec(f"{{type: npz, path: '{tmp_path / 'missing.npz'}'}}")
    with pytest.raises(SpecError) as err:
        build(load_spec_text(text, "spec.yaml"), tmp_path / "out")
    (problem,) = err.value.problems
    assert problem.path == "data.source.path"
    assert "file not found" in problem.message
    assert (problem.file, problem.line) == ("spec.yaml", 4)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
        )
        for name in [*PROJECT_NAMES, *LINT_VARIANTS]
    ],
)
def test_generated_code_is_ruff_formatted(projects, name):
    """Generated code is what `ruff format` would make of it (line length 100, as the
    generated pyproject.toml configures), so a user's formatter leaves it alone."""
    files = [str(p) for p in sorted(projects[name].rglob("*.py"))]
    result = run_ruff(
        "format", "--isolated", "--no-cache", "--line-length", "100", "--diff", *files
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_the_locks_resolved_spec_validates_to_itself(spec: Path, example_overrides) -> None:
    """What `build --locked` and `reproduce` read back must be the spec that was locked."""
    from gencompile.compiler.lower import lower
    from gencompile.spec import validate_raw
    from gencompile.spec.loader import Marks, RawSpec

    plan = lower(load_spec(spec, example_overrides(spec)))
    again = validate_raw(RawSpec(plan.resolved_spec, Marks(), None, ""))
    assert lower(again).resolved_spec == plan.resolved_spec
