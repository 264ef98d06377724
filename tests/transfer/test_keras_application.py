"""`type: keras_application`: a keras.applications body for an encoder or a discriminator.

Validation and compiled code need no TensorFlow; the trainings (MobileNetV2 at 32x32, two
steps) check that a frozen application keeps the weights of its file bit for bit while the
head trains. The weights file is written by the test itself: nothing is downloaded.
"""

from __future__ import annotations

import ast
import hashlib
import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from gencompile.compiler.applications import (
    APPLICATION_TABLE,
    application_state,
    infer_application,
)
from gencompile.compiler.lower import lower
from gencompile.compiler.plan import ProjectPlan
from gencompile.compiler.project import build, render_project
from gencompile.errors import SpecError
from gencompile.lockfile import read_lock
from gencompile.provenance import pretrained_problem
from gencompile.spec import load_spec_text
from gencompile.spec.applications import APPLICATIONS
from gencompile.spec.networks import KerasApplication

VAE = """\
spec_version: 1
name: kapp-vae
seed: 1
data:
  source: {{type: builtin, name: digits, classes: [0]}}
  preprocessing: {{scale: [0.0, 1.0]}}
  batch_size: 16
model:
  family: vae
  latent_dim: 2
  encoder:
    layers:
      - {{type: keras_application, application: {application}, weights: {weights}{extra}}}
  decoder: {{mlp: [8]}}
  likelihood: {{type: bernoulli}}
training:
  epochs: 2
  steps_per_epoch: 1
  checkpoint: {{every_epochs: 1, every_seconds: 0, keep: 2}}
evaluation: {{metrics: []}}
output: {{samples: {{count: 4}}, export: [], tensorboard: false}}
"""

GAN = """\
spec_version: 1
name: kapp-gan
seed: 1
data:
  source: {{type: builtin, name: digits, classes: [0]}}
  preprocessing: {{scale: [-1.0, 1.0]}}
  batch_size: 16
model:
  family: gan
  latent_dim: 4
  generator: {{mlp: [16]}}
  discriminator:
    layers:
      - {{type: keras_application, application: MobileNetV2, weights: {weights}{extra}}}
      - {{type: dense, units: 8, activation: leaky_relu}}
training:
  epochs: 2
  steps_per_epoch: 1
  checkpoint: {{every_epochs: 1, every_seconds: 0, keep: 2}}
evaluation: {{metrics: []}}
output: {{samples: {{count: 4}}, export: [], tensorboard: false}}
"""

RESIZE = ", resize: [32, 32]"
FROZEN = ", resize: [32, 32], trainable: false"


def vae(weights: str = "none", extra: str = RESIZE, application: str = "MobileNetV2") -> str:
    return VAE.format(weights=weights, extra=extra, application=application)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        lower(load_spec_text(text, "spec.yaml"))
    return [str(problem) for problem in caught.value.problems]


def compiled(text: str) -> tuple[ProjectPlan[object], dict[str, str]]:
    """The plan and the generated files of a spec's text."""
    loaded = load_spec_text(text, "spec.yaml")
    plan = lower(loaded)
    return plan, render_project(loaded, plan)


def model_source(text: str) -> str:
    plan, files = compiled(text)
    return files[f"{plan.package}/model.py"]


# -- validation, located at the spec line -------------------------------------------------


def test_an_unknown_application_is_refused_with_did_you_mean() -> None:
    assert problems(vae(application="MobileNetv2")) == [
        "spec.yaml:13:48: model.encoder.layers[0].application: unknown application "
        "'MobileNetv2'; expected one of MobileNetV2, EfficientNetB0, ResNet50, DenseNet121, "
        "VGG16 (did you mean 'MobileNetV2'?)"
    ]


def test_imagenet_weights_are_refused_with_where_to_get_the_file() -> None:
    [problem] = problems(vae(weights="imagenet"))
    assert problem == (
        "spec.yaml:13:61: model.encoder.layers[0].weights: weights: imagenet downloads the "
        "weights when the model is built, and the build must work offline (download "
        "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 on a machine that "
        "is online and give its path: weights: FILE)"
    )
    [resnet] = problems(vae(weights="imagenet", application="ResNet50"))
    assert "keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in (
        resnet
    )


def test_a_weights_file_must_be_a_keras_h5_file_that_exists(tmp_path: Path) -> None:
    [wrong_kind] = problems(vae(weights="mobilenet.npz"))
    assert "layers[0].weights: a weights file ends with .h5 or .weights.h5" in wrong_kind
    [missing] = problems(vae(weights=str(tmp_path / "absent_notop.h5")))
    assert missing.startswith("spec.yaml:13:70: model.encoder.layers[0].weights: no weights file")
    assert "or set weights: none" in missing


def test_too_small_images_are_refused_with_the_minimum_and_the_fix() -> None:
    assert problems(vae(extra="")) == [
        "spec.yaml:13:9: model.encoder.layers[0]: MobileNetV2 needs images of at least 32x32, "
        "but gets 8x8: add `resize: [32, 32]` to the layer (a keras Resizing layer before it)"
    ]


def test_an_application_must_read_the_data_images_in_a_known_range() -> None:
    later = vae().replace(
        "    layers:\n", "    layers:\n      - {type: conv2d, filters: 3, kernel_size: 3}\n"
    )
    [problem] = problems(later)
    assert problem.endswith(
        "model.encoder.layers[1]: a keras_application reads the data's images: it must be the "
        "first layer of the encoder (move it first, or describe this network with other layers)"
    )
    gan = GAN.format(weights="none", extra=RESIZE)
    standardized = gan.replace("{scale: [-1.0, 1.0]}", "{standardize: true}")
    [problem] = problems(standardized)
    assert "MobileNetV2 reads pixels in [0, 255], which the data's preprocessing" in problem
    assert "(set data.preprocessing: {scale: [0.0, 1.0]} (or [-1.0, 1.0]))" in problem
    in_decoder = vae().replace(
        "decoder: {mlp: [8]}",
        "decoder: {layers: [{type: keras_application, application: VGG16, weights: none}]}",
    )
    [problem] = problems(in_decoder)
    assert problem == (
        "spec.yaml:14:22: model.decoder.layers[0]: a keras_application reads the data's "
        "images, which the decoder is not given: it may stand first in an encoder (vae, "
        "vq_vae) or in an unconditional discriminator (gan) (describe the decoder with other "
        "layers)"
    )


def test_a_conditional_discriminator_is_told_its_condition_is_the_obstacle() -> None:
    conditional = GAN.format(weights="none", extra=RESIZE).replace(
        "  latent_dim: 4\n", "  latent_dim: 4\n  conditional: {num_classes: 10}\n"
    )
    [problem] = problems(conditional)  # first, yet refused: for the condition, not the place
    assert "model.discriminator.layers[0]: a keras_application reads the data's images " in (
        problem
    )
    assert "no layer of a conditional discriminator (model.conditional) gets" in problem
    assert problem.endswith(
        "(remove model.conditional (an unconditional gan), or describe the discriminator with "
        "other layers)"
    )
    assert "move it first" not in problem


# -- compiled code --------------------------------------------------------------------------


def test_a_vae_encoder_reads_like_a_transfer_learning_example() -> None:
    source = model_source(vae(extra=FROZEN))
    encoder = source.split("def build_encoder")[1].split("def build_decoder")[0]
    expected = [
        'h = layers.Resizing(32, 32, name="resizing")(x)',
        'h = layers.Concatenate(name="grey_to_rgb")([h, h, h])',
        'h = layers.Rescaling(255.0, name="to_pixels")(h)',
        "# Its weights start random (weights: none).",
        "h = keras.applications.mobilenet_v2.preprocess_input(h)",
        "base_model = keras.applications.MobileNetV2(",
        'input_shape=(32, 32, 3), include_top=False, weights=None, pooling="avg", '
        'name="mobilenetv2"',
        "base_model.trainable = False",
        "h = base_model(h, training=False)",
        'z_mean = layers.Dense(2, name="z_mean")(h)',
    ]
    lines = [line.strip() for line in encoder.splitlines()]
    positions = [lines.index(line) for line in expected]
    assert positions == sorted(positions)
    ast.parse(source)


def test_a_trainable_application_without_weights_trains_its_batch_norm() -> None:
    encoder = model_source(vae()).split("def build_encoder")[1].split("def build_decoder")[0]
    assert "h = base_model(h)\n" in encoder and "trainable" not in encoder


def test_a_gan_discriminator_scales_its_data_to_pixels(tmp_path: Path) -> None:
    weights = tmp_path / "mobilenet_v2_notop.h5"
    weights.write_bytes(b"")  # only its existence is checked when compiling
    text = GAN.format(weights=weights, extra=FROZEN)
    _, files = compiled(text)
    model = files["kapp_gan/model.py"]
    discriminator = model.split("def build_discriminator")[1]
    # Data in [-1, 1] -> pixels in [0, 255], then MobileNetV2's own scaling.
    assert 'h = layers.Rescaling(127.5, offset=127.5, name="to_pixels")(h)' in discriminator
    assert "# train.py loads its weights from the file given in model.discriminator.layers[0]" in (
        discriminator
    )
    assert "weights=None" in discriminator  # rebuilding a trained model needs no file
    train = files["kapp_gan/train.py"]
    [assigned] = [
        ast.literal_eval(node.value)
        for node in ast.parse(train).body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "APPLICATION_WEIGHTS"
    ]
    assert assigned == {"discriminator": {"mobilenetv2": str(weights)}}
    assert "applications.load_application_weights(model, APPLICATION_WEIGHTS)" in train


def test_the_lock_pins_the_weights_file_and_reproduce_checks_it(tmp_path: Path) -> None:
    weights = tmp_path / "mobilenet_v2_notop.h5"
    weights.write_bytes(b"pretrained")
    built = build(load_spec_text(GAN.format(weights=weights, extra=FROZEN)), tmp_path / "p")
    lock = read_lock(built.directory)  # the lock's structure accepts the entry
    digest = hashlib.sha256(b"pretrained").hexdigest()
    assert lock["pretrained"] == {
        "discriminator.mobilenetv2": {"weights": str(weights), "sha256": digest}
    }
    assert pretrained_problem(lock) is None
    weights.write_bytes(b"retrained")
    changed = pretrained_problem(lock)
    assert changed == (
        f"discriminator.mobilenetv2 started from {weights}, which has changed since "
        f"(sha256 {digest[:12]} then, {hashlib.sha256(b'retrained').hexdigest()[:12]} now)"
    )
    weights.unlink()
    assert pretrained_problem(lock) == (
        f"discriminator.mobilenetv2 started from {weights}, which is gone (sha256 "
        f"{digest[:12]} in the lock); put it back (paths are relative to the working directory)"
    )
    assert "pretrained" not in read_lock(build(load_spec_text(vae()), tmp_path / "q").directory)


def test_a_hostile_weights_path_reaches_train_py_as_one_string(tmp_path: Path) -> None:
    hostile = tmp_path / "x'); import os; os.system('id') #\n\"\"\".h5"
    hostile.write_bytes(b"")
    quoted = '"' + str(hostile).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    text = GAN.format(weights=quoted, extra=RESIZE)
    train = compiled(text)[1]["kapp_gan/train.py"]
    tree = ast.parse(train)
    assert str(hostile) in [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert all(getattr(n, "module", "") != "os" for n in imports)


def test_explain_counts_the_frozen_application(run_cli, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(vae(extra=FROZEN))
    code, out, _ = run_cli("explain", str(spec))
    assert code == 0
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines()]
    assert ["mobilenetv2", "MobileNetV2 (frozen)", "(batch, 1280)", "2,257,984"] in cells
    # Keras: 2,257,984 non-trainable, of which 34,112 batch-norm statistics
    assert ["frozen", "", "", "2,223,872"] in cells
    assert ["non-trainable state", "", "", "34,112"] in cells
    assert ["trainable", "", "", f"{1280 * 2 * 2 + 2 * 2:,}"] in cells


def test_a_schedule_unfreezes_the_application() -> None:
    schedule = "  fine_tune: {unfreeze_after_epochs: 1}\n  checkpoint:"
    text = vae(extra=FROZEN).replace("  checkpoint:", schedule)
    plan, files = compiled(text)
    assert plan.training["fine_tune"]["frozen"] == ["encoder.mobilenetv2"]
    source = files["kapp_vae/model.py"]
    assert "base_model.trainable = False" not in source
    assert "# Frozen by a learning rate of 0 until training.fine_tune unfreezes it." in source
    assert "h = base_model(h, training=False)" in source


# -- the compiler's table against Keras ---------------------------------------------------


def check_table_entry(name: str) -> None:
    """Output shapes and parameter count of one application as Keras builds it."""
    import keras

    record = APPLICATION_TABLE[name]
    layer = KerasApplication(type="keras_application", application=name, weights="none")
    built = getattr(keras.applications, name)(
        include_top=False, weights=None, input_shape=(33, 40, 3), pooling=None
    )
    unpooled = layer.model_copy(update={"pooling": None})
    assert infer_application(unpooled, (33, 40, 3)) == (
        tuple(built.output.shape[1:]),
        built.count_params(),
    ), name
    assert infer_application(layer, (33, 40, 1)) == ((record.channels,), record.params)
    assert (
        application_state(layer, (33, 40, 1))
        == record.state
        == sum(int(math.prod(w.shape)) for w in built.non_trainable_weights)
    ), name
    assert hasattr(getattr(keras.applications, record.module), "preprocess_input")


def test_the_table_matches_keras_for_mobilenet_v2() -> None:
    assert tuple(APPLICATION_TABLE) == APPLICATIONS
    check_table_entry("MobileNetV2")


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in APPLICATIONS if name != "MobileNetV2"])
def test_the_table_matches_keras(name: str) -> None:
    check_table_entry(name)


# -- training: frozen weights kept bit for bit, the head trained ---------------------------


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MobileNetV2's weights (random, include_top=False) saved as a user would download them."""
    import keras

    keras.utils.set_random_seed(7)
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2_notop.weights.h5"
    base = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), include_top=False, weights=None, pooling="avg"
    )
    base.save_weights(path)
    return path


def h5_arrays(path: Path) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as weights:
        weights.visititems(
            lambda name, item: (
                found.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
            )
        )
    return found


def check_frozen_application(run: Path, network: str, head: str, weights: Path) -> None:
    """The application's arrays equal the file's at the end and after the first of two
    steps; the head's bias changed between them (a random MobileNetV2's features are tiny,
    so its kernel barely moves in one step)."""
    given = h5_arrays(weights)
    first = h5_arrays(run / "checkpoints" / "epoch-0001.weights.h5")
    final = h5_arrays(run / "model.weights.h5")
    prefix = f"{network}/layers/functional/"
    assert len(given) == 260  # every MobileNetV2 array, batch-norm statistics included
    for key, value in given.items():
        assert np.array_equal(final[prefix + key], value), key
        assert np.array_equal(first[prefix + key], value), key
    assert np.abs(first[head] - final[head]).max() > 1e-5


def test_a_vae_with_a_frozen_application_trains_only_its_head(
    weights_file: Path, tmp_path: Path
) -> None:
    from gencompile.runs import train

    spec = tmp_path / "vae.yaml"
    local = tmp_path / weights_file.name  # inside the spec's folder tree
    local.write_bytes(weights_file.read_bytes())
    spec.write_text(vae(weights=str(local), extra=FROZEN))
    run = tmp_path / "run"
    train(spec, run_dir=run, quiet=True)
    check_frozen_application(run, "encoder", "encoder/layers/dense/vars/1", weights_file)
    local.unlink()  # reproduce refuses, naming the file, before the lock's spec is checked
    from gencompile.errors import RunError
    from gencompile.reproduction import reproduce

    with pytest.raises(RunError) as gone:
        reproduce(run, allow_drift=True)
    assert str(gone.value).startswith(
        f"cannot reproduce {run}: encoder.mobilenetv2 started from {local}, which is gone "
    )
    assert str(gone.value).endswith("; put it back (paths are relative to the working directory)")
    assert not (tmp_path / "run-reproduced").exists()


@pytest.mark.slow  # MobileNetV2's graph takes ~15 s of CPU to trace: one such run is fast-tier
def test_a_gan_with_a_frozen_application_trains_only_its_head(
    weights_file: Path, tmp_path: Path
) -> None:
    from gencompile.runs import train

    spec = tmp_path / "gan.yaml"
    local = tmp_path / weights_file.name  # inside the spec's folder tree
    local.write_bytes(weights_file.read_bytes())
    spec.write_text(GAN.format(weights=local, extra=FROZEN))
    run = tmp_path / "run"
    train(spec, run_dir=run, quiet=True)
    check_frozen_application(
        run, "discriminator", "discriminator/layers/dense/vars/1", weights_file
    )


def test_a_missing_weights_file_stops_the_run_with_advice(tmp_path: Path) -> None:
    keras = pytest.importorskip("keras")
    from gencompile.errors import RunError
    from gencompile.runtime.applications import load_application_weights

    inputs = keras.Input((32, 32, 3))
    base = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), include_top=False, weights=None, name="mobilenetv2"
    )
    model = keras.Model(inputs, base(inputs))
    holder = type("Holder", (), {"encoder": model})()
    with pytest.raises(RunError, match=r"the weights file of encoder\.mobilenetv2 is missing"):
        load_application_weights(holder, {"encoder": {"mobilenetv2": str(tmp_path / "no.h5")}})
    wrong = tmp_path / "wrong.weights.h5"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save_weights(wrong)
    with pytest.raises(RunError, match="notop file") as caught:
        load_application_weights(holder, {"encoder": {"mobilenetv2": str(wrong)}})
    one_line(str(caught.value), str(wrong))


def one_line(message: str, weights: str) -> None:
    assert "\n" not in message and len(message) < 400, message
    assert message.startswith(f"cannot load {weights} into encoder.mobilenetv2: ")
    assert "do not fit MobileNetV2" in message and "is it MobileNetV2's notop file" in message


def test_another_applications_weights_file_is_refused_in_one_line(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    keras = pytest.importorskip("keras")
    from gencompile.errors import RunError
    from gencompile.runtime.applications import load_application_weights

    dense = tmp_path / "densenet.weights.h5"
    keras.applications.DenseNet121(
        input_shape=(32, 32, 3), include_top=False, weights=None
    ).save_weights(dense)
    inputs = keras.Input((32, 32, 3))
    base = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), include_top=False, weights=None, name="mobilenetv2"
    )
    holder = type("Holder", (), {"encoder": keras.Model(inputs, base(inputs))})()
    with pytest.raises(RunError) as caught:
        load_application_weights(holder, {"encoder": {"mobilenetv2": str(dense)}})
    one_line(str(caught.value), str(dense))
    assert "(e.g. Conv1/kernel is (3, 3, 3, 32) here, (7, 7, 3, 64) in the file" in str(
        caught.value
    )
    assert not [w for w in recwarn if "Skipping" in str(w.message)]  # Keras' 101 warnings


# -- the gradient monitor and frozen networks ------------------------------------------------


def test_the_gradient_monitor_skips_a_network_frozen_on_purpose() -> None:
    keras = pytest.importorskip("keras")
    from gencompile.runtime.callbacks import GradientMonitor

    def network() -> keras.Model:
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    gan = type("GAN", (), {"generator": network(), "discriminator": network()})()
    gan.generator.trainable = False  # freeze: true: its gradient list is empty, its norm 0
    said: list[str] = []
    monitor = GradientMonitor(warn=said.append)
    monitor.set_model(gan)
    monitor.on_epoch_end(0, {"g_grad_norm": 0.0, "d_grad_norm": 1e-9})
    assert len(said) == 1 and said[0].startswith("d_grad_norm fell to 1.0e-09 at epoch 1")
    gan.generator.trainable = True  # a trainable network's zero norm is still a warning
    monitor.on_epoch_end(1, {"g_grad_norm": 0.0})
    assert len(said) == 2 and said[1].startswith("g_grad_norm fell to 0.0e+00 at epoch 2")


# -- freeze: true on the network presets (a denoiser, a language model) ----------------------

PRESETS = [
    ("diffusion_ring8.yaml", "denoiser: {type: mlp,", "denoiser: {freeze: true, type: mlp,"),
    ("charlm_arithmetic.yaml", "network: {type: lstm,", "network: {freeze: true, type: lstm,"),
]


@pytest.mark.parametrize(("spec", "before", "after"), PRESETS)
def test_a_preset_network_freezes_until_a_schedule_unfreezes_it(
    spec: str, before: str, after: str
) -> None:
    text = (Path(__file__).parents[2] / "specs" / spec).read_text()
    assert before in text
    frozen = text.replace(before, after)
    [problem] = problems(frozen)
    assert ".freeze: freezing the " in problem
    assert "the model's only network, leaves nothing to train (unfreeze it on a schedule" in (
        problem
    )
    scheduled = frozen.replace(
        "training:\n", "training:\n  fine_tune: {unfreeze_after_epochs: 2}\n"
    )
    plan, files = compiled(scheduled)
    [network] = plan.networks
    assert network.frozen and network.frozen_until == 2
    assert plan.training["fine_tune"]["frozen"] == [network.name]
    assert (
        "# Frozen for the first 2 epochs (training.fine_tune)" in files[f"{plan.package}/model.py"]
    )
