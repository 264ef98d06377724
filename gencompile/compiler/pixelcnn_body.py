"""The PixelCNN body shared by the autoregressive family's image model and the VQ-VAE's
prior over codes: a masked 'A' convolution, residual blocks of 1x1 / masked 'B' 3x3 / 1x1
convolutions, and a 1x1 hidden head. Only the input and the logits differ."""

from __future__ import annotations

from dataclasses import dataclass

from gencompile.compiler.networks import NetworkBuilder
from gencompile.compiler.plan import LayerPlan


@dataclass(frozen=True)
class PixelCNNLayers:
    """Layer factories on one grid of height x width cells."""

    net: NetworkBuilder
    height: int
    width: int

    def masked(self, filters: int, kernel: int, mask: str, fan_in: int, name: str) -> LayerPlan:
        """A masked convolution: 'A' hides the centre cell (first layer), 'B' shows it."""
        return self.net.layer(
            "masked_conv2d",
            "gencompile_layers.MaskedConv2D",
            (
                ("filters", filters),
                ("kernel_size", kernel),
                ("mask_type", mask),
                ("activation", "relu"),
            ),
            (self.height, self.width, filters),
            kernel * kernel * fan_in * filters + filters,
            name=name,
            positional=2,
            regularize=True,
        )

    def pointwise(
        self, filters: int, fan_in: int, name: str, activation: str | None = "relu"
    ) -> LayerPlan:
        """A 1x1 convolution: mixes channels within a cell, so it cannot look ahead."""
        args: list[tuple[str, object]] = [("filters", filters), ("kernel_size", 1)]
        if activation:
            args.append(("activation", activation))
        return self.net.layer(
            "conv2d", "layers.Conv2D", tuple(args), (self.height, self.width, filters),
            fan_in * filters + filters, name=name, positional=2, regularize=True,
        )  # fmt: skip


def pixelcnn_body(
    layers: PixelCNNLayers, h: str, fan_in: int, filters: int, kernel_size: int, blocks: int
) -> str:
    """Add the body after input `h` (fan_in channels); returns the hidden head's output."""
    net, f, half = layers.net, filters, max(1, filters // 2)
    h = net.add("h", layers.masked(f, kernel_size, "A", fan_in, "masked_a"), (h,))
    for i in range(1, blocks + 1):
        skip = net.add(f"skip_{i}", None, (h,))
        h = net.add("h", layers.pointwise(half, f, f"block_{i}_reduce"), (h,))
        h = net.add("h", layers.masked(half, 3, "B", half, f"block_{i}_masked_b"), (h,))
        h = net.add("h", layers.pointwise(f, half, f"block_{i}_expand"), (h,))
        add = net.layer(
            "add", "layers.Add", (), (layers.height, layers.width, f), 0, name=f"block_{i}_add"
        )
        h = net.add("h", add, (skip, h), packed=True)
    return net.add("h", layers.pointwise(f, f, "head_hidden"), (h,))
