"""`@evaluation()`: the same weights give the same numbers, whatever the random state before."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np

from gencompile.runtime.evaluation import EVALUATION_COUNTER, evaluation, evaluation_seed, seeded
from gencompile.runtime.metrics.results import Metrics


class Noisy(keras.Model):
    """A model whose answer is a random draw from its own generator, as an ELBO's is."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.sample_seed_generator = keras.random.SeedGenerator(seed + 1)
        self.dropout = keras.layers.Dropout(0.5)  # its generator is seeded at random

    def draw(self) -> float:
        return float(keras.random.normal((), seed=self.seed_generator))


@evaluation()
def noisy_evaluate(model: Noisy, data: object, config: dict) -> Metrics:
    metrics = Metrics()
    metrics.add("draw", model.draw(), {"what": "one normal draw"})
    metrics.add("numpy", float(np.random.uniform()), {"what": "the global NumPy RNG"})
    return metrics


def test_evaluation_starts_from_a_fixed_state_and_restores_the_generators() -> None:
    model = Noisy(seed=7)
    assert evaluation_seed(model) == 7  # the model's own generators, not the Dropout's
    first = noisy_evaluate(model, SimpleNamespace(), {"metrics": ["draw"]})
    for _ in range(5):  # training moves the generators on
        model.draw()
    state = model.seed_generator.state.numpy().copy()
    np.random.uniform(size=3)
    again = noisy_evaluate(model, SimpleNamespace(), {"metrics": ["draw"]})
    assert again == first and isinstance(again, Metrics)
    assert again.computed_with["draw"] == {"what": "one normal draw", "evaluation_seed": 7}
    np.testing.assert_array_equal(model.seed_generator.state.numpy(), state)  # put back
    # A fresh model of the same seed (a later `gencompile evaluate`) gives the same numbers.
    assert noisy_evaluate(Noisy(seed=7), SimpleNamespace(), {"metrics": []}) == first
    assert noisy_evaluate(Noisy(seed=8), SimpleNamespace(), {"metrics": []}) != first


def test_seeded_moves_each_generator_to_its_evaluation_stream() -> None:
    model = Noisy(seed=3)
    with seeded(model) as seed:
        assert seed == 3
        assert model.seed_generator.state.numpy().tolist() == [3, EVALUATION_COUNTER]
        assert model.sample_seed_generator.state.numpy().tolist() == [4, EVALUATION_COUNTER]
    assert model.seed_generator.state.numpy().tolist() == [3, 0]
