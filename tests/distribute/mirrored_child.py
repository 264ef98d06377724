"""Child process of the mirrored-strategy tests: 2 logical CPU devices, then the checks.

TensorFlow fixes its devices when it initialises, so this runs in a fresh process:
`python mirrored_child.py OUT_DIR CASES_JSON` prints one JSON line per check.

A case `{"name", "spec", "overrides", "check"}` builds the spec twice, with strategy `none`
and with `mirrored`, and trains both the same steps in this process (the default strategy
places the single-device run on one device). check "equivalence" reports the largest
relative difference between their weights; check "uneven" does the same over a whole
epoch and its validation, and reports both histories; check "resume" trains the mirrored build for
two epochs straight and for one epoch, then resumes it from its checkpoint for the second;
check "run" is a whole mirrored `gencompile train`; check "actnorm" starts an actnorm
inside the replicas' steps; check "draw" splits one random draw between the replicas;
check "perplexity" splits a batch of VQ-VAE codes between them.
"""

from __future__ import annotations

import json
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

import tensorflow as tf

CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402
from child_training import (  # noqa: E402
    built_module,
    one_device,
    relative_difference,
    trained,
    weights,
)

from gencompile.runtime import training  # noqa: E402


def equivalence(case: dict[str, Any], out: Path) -> dict[str, Any]:
    single = trained(built_module(case, "none", out / "none"), out / "none")
    mirrored = trained(built_module(case, "mirrored", out / "mirrored"), out / "mirrored")
    return {
        "replicas": mirrored.distribute_strategy.num_replicas_in_sync,
        "epochs": min(single.epochs_trained, mirrored.epochs_trained),
        "relative_difference": relative_difference(weights(single), weights(mirrored)),
    }


def uneven(case: dict[str, Any], out: Path) -> dict[str, Any]:
    """One whole epoch, then validation, on one device and under the strategy: the same
    weights and the same logged means. The case's splits end with batches that split
    unevenly between the replicas. With "single_device_steps", the one device trains that
    many steps an epoch (what the strategy's epoch is when it leaves out a last batch)."""
    single = trained(built_module(one_device(case), "none", out / "none"), out / "none")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mirrored = trained(built_module(case, "mirrored", out / "mirrored"), out / "mirrored")
    held_out = {}
    if hasattr(single, "log_prob"):  # a flow: val_loss is the mean NLL of the held-out split
        nll = -np.asarray(single.log_prob(single.x_val), dtype=np.float64)
        held_out["held_out_nll"] = float(nll.mean())
    return {
        **held_out,
        "replicas": mirrored.distribute_strategy.num_replicas_in_sync,
        "split_sizes": list(single.split_sizes),
        "steps": int(mirrored.optimizer.iterations.numpy()),
        "warnings": [str(w.message) for w in caught if "replicas" in str(w.message)],
        "relative_difference": relative_difference(weights(single), weights(mirrored)),
        "history": {
            key: [values, mirrored.fitted_history.get(key)]
            for key, values in single.fitted_history.items()
        },
    }


def resume(case: dict[str, Any], out: Path) -> dict[str, Any]:
    module = built_module(case, "mirrored", out / "straight")
    straight = trained(module, out / "straight", epochs=2)
    module = built_module(case, "mirrored", out / "resumed")
    trained(module, out / "resumed", epochs=1)
    resumed = trained(module, out / "resumed", epochs=2, resume=True)
    return {
        "replicas": resumed.distribute_strategy.num_replicas_in_sync,
        "relative_difference": relative_difference(weights(straight), weights(resumed)),
    }


def actnorm(case: dict[str, Any], out: Path) -> dict[str, Any]:
    """ActNorm started inside the replicas' steps, each on half of a batch, against the
    whole batch on one device: the moments are all-reduced, so the starts agree."""
    from gencompile.runtime.flows import ActNorm

    x = np.random.default_rng(0).normal(3.0, 2.0, size=(8, 4, 4, 3)).astype("float32")
    single = ActNorm()
    single.build(x.shape)
    single.initialize(tf.constant(x))
    strategy = training.mirrored_strategy()  # one per process (see its docstring)
    with strategy.scope():
        mirrored = ActNorm()
        mirrored.build(x.shape)
    batches = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(x))
    strategy.run(tf.function(mirrored.initialize), args=(next(iter(batches)),))
    copies = [
        [np.asarray(t) for t in strategy.experimental_local_results(v.value)]
        for v in (mirrored.bias, mirrored.log_scale)
    ]
    expected = [np.asarray(single.bias.numpy()), np.asarray(single.log_scale.numpy())]
    return {
        "replicas": strategy.num_replicas_in_sync,
        "relative_difference": max(
            relative_difference(expected, [copy[i] for copy in copies])
            for i in range(strategy.num_replicas_in_sync)
        ),
    }


def draw(case: dict[str, Any], out: Path) -> dict[str, Any]:
    """`replicas.draw` over a batch of 7 split 4 + 3 against one device's draw of 7."""
    import keras

    from gencompile.runtime import replicas

    expected = keras.random.normal((7, 3), seed=keras.random.SeedGenerator(5))
    strategy = training.mirrored_strategy()
    with strategy.scope():
        seed = keras.random.SeedGenerator(5)

    @tf.function
    def step(x: tf.Tensor) -> tf.Tensor:
        return replicas.draw(lambda n: keras.random.normal((n, 3), seed=seed), tf.shape(x)[0])

    batch = tf.data.Dataset.from_tensor_slices(np.zeros((7, 1), "float32")).batch(7)
    rows = strategy.experimental_local_results(
        strategy.run(step, args=(next(iter(strategy.experimental_distribute_dataset(batch))),))
    )
    return {
        "replicas": strategy.num_replicas_in_sync,
        "rows": [int(part.shape[0]) for part in rows],
        "relative_difference": relative_difference(
            [np.asarray(expected)], [np.concatenate([np.asarray(part) for part in rows])]
        ),
    }


def perplexity(case: dict[str, Any], out: Path) -> dict[str, Any]:
    """`vq.code_statistics` inside the replicas' steps, each on half of a batch whose halves
    use different codes, against the whole batch on one device."""
    from gencompile.runtime import vq

    codes = np.repeat(np.arange(4, dtype="int32"), 2).reshape(8, 1, 1)  # halves: {0,1} {2,3}
    expected = [float(value) for value in vq.code_statistics(codes, 8)]
    strategy = training.mirrored_strategy()
    batch = tf.data.Dataset.from_tensors(codes)
    step = tf.function(lambda c: tf.stack(vq.code_statistics(c, 8)))
    per_replica = strategy.experimental_local_results(
        strategy.run(step, args=(next(iter(strategy.experimental_distribute_dataset(batch))),))
    )
    return {
        "replicas": strategy.num_replicas_in_sync,
        "expected": expected,
        "per_replica": [[float(value) for value in np.asarray(part)] for part in per_replica],
    }


def run(case: dict[str, Any], out: Path) -> dict[str, Any]:
    """A whole `gencompile train` under the strategy: fit, evaluate, samples, exports."""
    from gencompile.runs import train

    overrides = [*case["overrides"], "training.distribution.strategy=mirrored"]
    result = train(case["spec"], overrides, run_dir=out, quiet=True)
    return {
        "replicas": training.mirrored_strategy().num_replicas_in_sync,
        "metrics": {name: float(value) for name, value in result.metrics.items()},
        "files": sorted(path.name for path in out.iterdir()),
    }


CHECKS = {
    "equivalence": equivalence,
    "uneven": uneven,
    "resume": resume,
    "actnorm": actnorm,
    "draw": draw,
    "perplexity": perplexity,
    "run": run,
}


def main(out: Path, cases: list[dict[str, Any]]) -> None:
    for case in cases:  # a failed check is reported, and the others still run
        try:
            result = CHECKS[case["check"]](case, out / case["name"])
        except Exception as err:
            traceback.print_exc()
            result = {"error": f"{type(err).__name__}: {err}"}
        print(json.dumps({"name": case["name"], **result}), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), json.loads(sys.argv[2]))
