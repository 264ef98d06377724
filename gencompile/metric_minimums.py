"""The fewest samples and real examples each sample-quality metric is computed from.

Shared by the spec (validation refuses too few where the counts are known: the spec's
evaluation.num_samples, a built-in data set's size) and the runtime (which computes the
metrics, and refuses too few of a data file), so it imports neither, nor TensorFlow. The
Frechet distances need one per feature of their network: gencompile.spec.checks and
gencompile.runtime.metrics.samples hold those with the networks.
"""

from __future__ import annotations

PR_NEIGHBOURS = 3  # k of improved precision and recall
IS_SPLITS = 10  # the Inception Score's parts

# Statistics of at least 2 rows; precision and recall more rows than their k neighbours on
# each side; the Inception Score one sample per part at least.
SAMPLE_MINIMUM = {
    "kid": 2,
    "energy_distance": 2,
    "mode_coverage": 2,
    "precision_recall": PR_NEIGHBOURS + 1,
    "inception_score": IS_SPLITS,
}
REAL_MINIMUM = {
    "kid": 2,
    "energy_distance": 2,
    "precision_recall": PR_NEIGHBOURS + 1,
}
