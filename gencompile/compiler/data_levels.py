"""The discrete levels of the data, and the likelihoods that must hold each level exactly.

A categorical likelihood over `bins` values (a VAE's or VQ-VAE's decoder, a PixelCNN's
pixels) and a flow's uniform dequantization both read data scaled to [0, 1] as level
round(x * (bins - 1)). Data with `levels` values k / (levels - 1) lands each value on a
bin of its own value only when (bins - 1) is a multiple of (levels - 1); otherwise values
are rounded: fewer bins merge several data values into one (17 digit levels in 5 bins),
so the model's negative log-likelihood is that of a coarsened copy of the data, not of
the data; more bins move values off their own (the model samples values the data never
takes). `check_bins` refuses both, located at the `bins` field, for every family alike.
"""

from __future__ import annotations

from gencompile.compiler.lowering import Lowering
from gencompile.compiler.plan import PathKey
from gencompile.levels import source_levels
from gencompile.spec.data import DataSource


def data_levels(source: DataSource) -> int | None:
    """How many values the data takes, where the source says so without reading it
    (`gencompile.levels.source_levels`)."""
    return source_levels(source.model_dump(mode="json"))


def check_bins(low: Lowering, path: PathKey, bins: int) -> None:
    """Report, at `path`, `bins` that cannot hold each of the data's levels exactly."""
    levels = data_levels(low.spec.data.source)
    if levels is not None and (bins - 1) % (levels - 1):
        low.report(
            path,
            f"the data has {levels} levels (0..{levels - 1}), which {bins} bins cannot hold "
            "exactly",
            f"use bins: {levels}",
        )
