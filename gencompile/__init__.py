"""gencompile: compile declarative YAML specs of generative models into Keras 3 projects.

The public API; importing it does not import TensorFlow.

    from gencompile import load_spec, build, train
    project = build(load_spec("specs/vae_digits.yaml"), "build/vae_digits")
    run = train("specs/vae_digits.yaml", epochs=5)
"""

from __future__ import annotations

from gencompile._version import __version__
from gencompile.compiler.project import build
from gencompile.reproduction import reproduce
from gencompile.runs import evaluate, resume, train
from gencompile.sampling import sample
from gencompile.spec import load_spec

__all__ = [
    "__version__",
    "build",
    "evaluate",
    "load_spec",
    "reproduce",
    "resume",
    "sample",
    "train",
]
