"""gencompile: compile declarative YAML specs of generative models into Keras 3 projects.

The public API; importing it does not import TensorFlow.

    from gencompile import load_spec, build, train
    project = build(load_spec("specs/vae_digits.yaml"), "build/vae_digits")
    run = train("specs/vae_digits.yaml", epochs=5)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from gencompile._version import __version__

# Where each public name lives. Imported on first use, so that `import gencompile.runtime`
# (all a generated project needs) loads neither the compiler nor the spec language.
_PUBLIC = {
    "build": "gencompile.compiler.project",
    "evaluate": "gencompile.runs",
    "load_spec": "gencompile.spec",
    "reproduce": "gencompile.reproduction",
    "resume": "gencompile.runs",
    "sample": "gencompile.sampling",
    "train": "gencompile.runs",
}


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'gencompile' has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name]), name)


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
