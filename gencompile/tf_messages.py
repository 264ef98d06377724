"""TensorFlow's error messages said in one line, without TensorFlow: the launcher of local
workers (`local_cluster`) and a worker of a hand-started cluster (`runtime.training`) both
summarise the collective failure a stopped peer causes."""

from __future__ import annotations

import re

__all__ = ["tf_summary", "unhealthy"]

# TensorFlow's collective operations fail on every worker when one stops sending heartbeats,
# naming it: "The following tasks are unhealthy (stopped sending heartbeats):
# /job:worker/replica:0/task:1".
_UNHEALTHY = re.compile(r"stopped sending heartbeats\):?((?:\s*/job:worker/replica:\d+/task:\d+)+)")


def unhealthy(message: str) -> list[int]:
    """The workers a TensorFlow error says stopped sending heartbeats (none: [])."""
    found = _UNHEALTHY.search(message)
    if not found:
        return []
    return sorted({int(task) for task in re.findall(r"task:(\d+)", found.group(1))})


# What TensorFlow adds to an operation's error: where the op was built (a stack of "File"
# lines), and its node and function names.
_TF_NOISE = re.compile(r"(Graph execution error:|Detected at node |File \"|\[\[\{\{node )")

# ... and the function a failed collective ran in, before its message on the same line.
_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")


def tf_summary(message: str) -> str:
    """A TensorFlow error's message in one line: its first meaningful line (with the next,
    when that one ends with a colon: the tasks or values it announces)."""
    lines = [_FUNCTION_NODE.sub("", line).strip() for line in message.splitlines()]
    kept = [line for line in lines if line and not _TF_NOISE.match(line)]
    if not kept:
        return " ".join(lines).strip()
    if kept[0].endswith(":") and len(kept) > 1:
        return f"{kept[0]} {kept[1]}"
    return kept[0]
