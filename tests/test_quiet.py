"""TensorFlow's start-up chatter (CUDA, absl, oneDNN) is left out on a machine without a GPU;
every other line written while TensorFlow loads still shows, and all of them when the
import fails. The frameworks import with the garbage collector paused, and their objects
are frozen out of later collections."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from gencompile.runtime import quiet

ROOT = Path(__file__).resolve().parents[1]
NOISE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796222224.205481    6317 port.cc:153] oneDNN custom operations are on.\n"
    "I0000 00:00:1796222224.210693    6317 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.\n"
    "E0000 00:00:1796222233.486223    6317 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
)


def noisy(lines: list[str]) -> list[str]:
    return [line for line in lines if any(w in line.lower() for w in ("cuda", "absl", "onednn"))]


@pytest.mark.parametrize("has_gpu", [False, True])
def test_only_the_noise_is_left_out_and_only_without_a_gpu(has_gpu: bool) -> None:
    text = NOISE + "W0000 something real went wrong\n"
    kept = quiet.without_noise(text, has_gpu)
    assert kept == (text if has_gpu else "W0000 something real went wrong\n")


class FakeLoader:
    """Writes like TensorFlow's import does: straight to descriptor 2."""

    def __init__(self, fail: bool):
        self.fail = fail

    def create_module(self, spec: object) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        os.write(2, (NOISE + "a line that matters\n").encode())
        if self.fail:
            raise ImportError("libcudart.so.12: cannot open shared object file")
        module.config = SimpleNamespace(list_physical_devices=lambda kind: [])


@pytest.mark.parametrize("fail", [False, True])
def test_the_wrapped_import_writes_back_what_is_not_noise(
    fail: bool, capfd: pytest.CaptureFixture
) -> None:
    module = ModuleType("fake_tensorflow")
    module.__spec__ = SimpleNamespace(loader=None)
    loader = quiet._Loader(FakeLoader(fail))
    if fail:
        with pytest.raises(ImportError, match="libcudart"):
            loader.exec_module(module)
    else:
        loader.exec_module(module)
    err = capfd.readouterr().err
    assert "a line that matters" in err
    assert bool(noisy(err.splitlines())) == fail  # a failed import shows everything


def test_the_collector_pause_nests_and_restores_what_it_found() -> None:
    assert gc.isenabled()
    with quiet.collector_paused():
        assert not gc.isenabled()
        with quiet.collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause is still on
    assert gc.isenabled()
    gc.disable()
    try:
        with quiet.collector_paused():
            pass
        assert not gc.isenabled()  # off before, off after
    finally:
        gc.enable()


# Stand-ins for the frameworks: keras imports tensorflow, as the real one does; each
# records whether the collector ran while it was imported.
FAKE_KERAS = """
import gc
collector_on = gc.isenabled()
import tensorflow
"""
FAKE_TENSORFLOW = """
import gc
from types import SimpleNamespace
collector_on = gc.isenabled()
config = SimpleNamespace(list_physical_devices=lambda kind: [])
"""
PROBE = """
import gc, json, sys
import gencompile.runtime  # installs the hook
frozen_before = gc.get_freeze_count()
import keras, tensorflow
hooks = [type(f).__name__ for f in sys.meta_path if type(f).__module__.endswith("quiet")]
frozen = [frozen_before, gc.get_freeze_count() > 0]
print(json.dumps([keras.collector_on, tensorflow.collector_on, gc.isenabled(), hooks, frozen]))
"""


def test_the_frameworks_import_with_the_collector_paused_then_their_objects_are_frozen(
    tmp_path: Path,
) -> None:
    for name, source in (("keras", FAKE_KERAS), ("tensorflow", FAKE_TENSORFLOW)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(source)
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    keras_on, tensorflow_on, after, hooks, frozen = json.loads(done.stdout)
    assert (keras_on, tensorflow_on, after) == (False, False, True)
    assert hooks == []  # both found: the hook is gone
    assert frozen == [0, True]  # what existed after the import is left out of collections


# A whole `gencompile train` process printing none of it: tests/runtime/test_tensorboard.py
# (one training checks its logs and its stderr).
