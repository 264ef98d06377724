"""The VampPrior (Tomczak & Welling 2018): p(z) = (1/K) sum_k q(z | u_k).

The K pseudo-inputs u_k are weights shaped like the data; the mixture's components are the
encoder's Gaussian posteriors at them, so the prior follows the encoder as it trains. The
prior holds the encoder through a function (`encode(u) -> (mean, log_var)`), not as a
sub-layer: the encoder's weights belong to the model once, and are saved once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from gencompile.runtime.distributions import diag_normal_log_prob, reparameterize

Tensor = tf.Tensor
Encode = Callable[[Any], tuple[Any, Any]]

__all__ = ["VampPrior"]


@keras.saving.register_keras_serializable(package="gencompile")
class VampPrior(layers.Layer):
    """A mixture of the posteriors q(z | u_k) at K learned pseudo-inputs u_k."""

    analytic_kl: ClassVar[bool] = False

    def __init__(
        self,
        latent_dim: int,
        data_shape: tuple[int, ...],
        pseudo_inputs: int,
        encode: Encode | None = None,
        init: str = "data",
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if int(pseudo_inputs) < 1 or init not in ("data", "noise"):
            raise ValueError(
                "VampPrior needs pseudo_inputs >= 1 and init 'data' or 'noise'. "
                f"Received: pseudo_inputs={pseudo_inputs!r}, init={init!r}"
            )
        self.latent_dim = int(latent_dim)
        self.data_shape = tuple(int(d) for d in data_shape)
        self.num_pseudo_inputs, self.init, self.seed = int(pseudo_inputs), init, int(seed)
        self.encode = encode
        # Small noise around 0: the start of init 'noise', replaced by data with init 'data'.
        self.pseudo_inputs = self.add_weight(
            shape=(self.num_pseudo_inputs, *self.data_shape),
            initializer=keras.initializers.RandomNormal(stddev=0.01, seed=self.seed),
            name="pseudo_inputs",
        )
        self.built = True

    def components(self) -> tuple[Tensor, Tensor]:
        """The mean and log-variance of q(z | u_k) for every pseudo-input -> 2 x `[K, D]`."""
        if self.encode is None:
            raise ValueError("VampPrior needs `encode`: the encoder's (mean, log_var) function")
        mean, log_var = self.encode(self.pseudo_inputs)
        return tf.cast(mean, tf.float32), tf.cast(log_var, tf.float32)

    def log_prob(self, z: Any) -> Tensor:
        """log (1/K) sum_k N(z; mu_k, sigma_k^2) -> `[B]`."""
        mean, log_var = self.components()
        per_component = diag_normal_log_prob(tf.cast(z, tf.float32)[:, None, :], mean, log_var)
        return tf.reduce_logsumexp(per_component, axis=-1) - math.log(self.num_pseudo_inputs)

    def sample(self, n: Any, seed: Any, temperature: Any = 1.0) -> Tensor:
        """A pseudo-input k uniformly, then z ~ q(z | u_k) with its standard deviation
        scaled by `temperature`."""
        mean, log_var = self.components()
        logits = tf.zeros((n, self.num_pseudo_inputs))
        k = keras.random.categorical(logits, 1, dtype="int32", seed=seed)[:, 0]
        eps = keras.random.normal((n, self.latent_dim), dtype="float32", seed=seed)
        return reparameterize(tf.gather(mean, k), tf.gather(log_var, k), noise=temperature * eps)

    def initialize_from(self, batches: Iterable[Any]) -> None:
        """With init 'data': the pseudo-inputs become the first K training examples (batches
        read until K are seen; fewer examples are cycled)."""
        if self.init != "data":
            return
        seen: list[np.ndarray] = []
        count = 0
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            seen.append(np.asarray(x, np.float32))
            count += len(seen[-1])
            if count >= self.num_pseudo_inputs:
                break
        if not count:
            raise ValueError("VampPrior init 'data' needs at least one training example")
        examples = np.concatenate(seen)
        chosen = examples[np.arange(self.num_pseudo_inputs) % len(examples)]
        self.pseudo_inputs.assign(chosen.reshape(self.pseudo_inputs.shape))

    def call(self, z: Any) -> Tensor:
        return self.log_prob(z)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "data_shape": list(self.data_shape),
            "pseudo_inputs": self.num_pseudo_inputs,
            "init": self.init,
            "seed": self.seed,
        }
