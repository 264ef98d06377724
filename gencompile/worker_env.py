"""The environment variables by which `gencompile train --workers N` (`local_cluster`)
tells each worker process it started what it needs to know; read by the worker's runtime
(`runtime.cluster`) too, so kept here, without TensorFlow."""

from __future__ import annotations

LAUNCHER_ENV = "GENCOMPILE_LAUNCHER_PID"  # a worker started after its launcher died exits
ERROR_FILE_ENV = "GENCOMPILE_WORKER_ERROR_FILE"
SCRATCH_ENV = "GENCOMPILE_WORKER_SCRATCH"  # a worker's own output folder, removed after
WARNINGS_FD_ENV = "GENCOMPILE_WORKER_WARNINGS_FD"  # the chief's warnings: the user's stderr
