"""A mixture compiles its E-step with XLA only when an epoch has enough batches to repay the
compilation (1-2 s per batch shape); both ways fit the same mixture."""

from __future__ import annotations

import numpy as np

from gencompile.runtime import mixture, training

OPTIMIZER = {"type": "adam", "learning_rate": 1e-3}


def test_xla_from_the_batch_count_that_repays_it():
    assert not mixture.e_step_with_xla(mixture.XLA_MIN_BATCHES - 1)
    assert mixture.e_step_with_xla(mixture.XLA_MIN_BATCHES)


def test_build_and_compile_chooses_from_the_epochs_batches(generated_mixture):
    module = generated_mixture("full")
    config = {
        "mixed_precision": False,
        "distribution": {"strategy": "none"},
        "optimizer": OPTIMIZER,
        "schedule": None,
    }
    for batches, expected in ((mixture.XLA_MIN_BATCHES - 1, False), (100, True)):
        model = training.build_and_compile(
            module.build_model, {**config, "steps_per_epoch": batches}, data=None, epochs=1
        )
        assert model.e_step_with_xla is expected


def test_the_xla_e_step_fits_what_the_graph_one_does(generated_mixture, make_data, em):
    x = make_data(900, 4, 3).astype(np.float32).astype(np.float64)
    weights, means, covariances = em.poor_start(x, "full", 3)
    fitted = []
    module = generated_mixture("full")
    for xla in (False, True):
        model = module.build_model()
        model.choose_compilation(mixture.XLA_MIN_BATCHES if xla else 1)
        precisions = mixture.precisions_cholesky(covariances, "full")
        model.set_parameters(weights, means, precisions)
        em.run_em(model, x, iterations=4)  # batches of 256: a full and a partial shape
        fitted.append((model.means.numpy(), em.mean_log_likelihood(model, x)))
        assert (module.e_step_xla.experimental_get_tracing_count() > 0) is xla
    (means_graph, ll_graph), (means_xla, ll_xla) = fitted
    np.testing.assert_allclose(means_xla, means_graph, rtol=1e-9, atol=1e-9)
    assert abs(ll_xla - ll_graph) <= 1e-9 * abs(ll_graph)
    assert np.isfinite(ll_graph)
