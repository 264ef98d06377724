"""Child process of the multi-worker tests: `python multi_worker_child.py OUT CASES ROLE`.

ROLE `reference` trains every case with strategy `none` (one process, one device; a case's
"single_device_steps" an epoch, if it has them) and saves each case's weights to
OUT/reference/<name>.npz. ROLE `worker` is one worker of the cluster
in TF_CONFIG: it joins the cluster before TensorFlow runs anything, then trains every case
with strategy `multi_worker` in OUT/worker-<index>/<name>/, and saves the weights it ended
with to OUT/worker-<index>/<name>.npz. Each prints one JSON line per case.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from gencompile.runtime import cluster

if __name__ == "__main__" and sys.argv[3] == "worker":
    cluster.multi_worker_strategy()  # before any TensorFlow operation

import numpy as np
from child_training import built_module, one_device, trained, weights


def train_case(case: dict[str, Any], out: Path, role: str) -> dict[str, Any]:
    strategy = "none" if role == "reference" else "multi_worker"
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    folder = out / ("reference" if role == "reference" else f"worker-{config['task']['index']}")
    module = built_module(
        one_device(case) if role == "reference" else case, strategy, folder / case["name"]
    )
    model = trained(module, folder / case["name"])
    np.savez(folder / f"{case['name']}.npz", *weights(model))
    return {
        "replicas": model.distribute_strategy.num_replicas_in_sync,
        "epochs": model.epochs_trained,
        "steps": int(model.optimizer.iterations.numpy()),
        "history": model.fitted_history,
        "chief": cluster.is_chief(),
        "files": sorted(path.name for path in (folder / case["name"]).iterdir()),
    }


def main(out: Path, cases: list[dict[str, Any]], role: str) -> int:
    for case in cases:
        try:
            result = train_case(case, out, role)
        except Exception as err:  # the workers are out of step now: stop, and say why
            traceback.print_exc()
            print(json.dumps({"name": case["name"], "error": f"{type(err).__name__}: {err}"}))
            return 1
        print(json.dumps({"name": case["name"], **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]))
