"""Equal rewrites that only the export trace sees: within the context managers a method of
some layers (`call`, `excitation`, `convolution_op`) is replaced by an instance attribute
shadowing the class's method, and the class's is back afterwards, so the Keras model
computes as before."""

import contextlib

import keras
from keras import ops

from se_keras.layers import SqueezeExcite


@contextlib.contextmanager
def shadowed(layers, method, replacement):
    """Within the block each layer's `method` is `replacement(layer)`: an instance attribute
    shadows the class's method, and deleting it restores that."""
    for layer in layers:
        setattr(layer, method, replacement(layer))
    try:
        yield
    finally:
        for layer in layers:
            delattr(layer, method)


def all_layers(model):
    """Every layer of `model`, nested models' layers included (after the nested model)."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


@contextlib.contextmanager
def pooled_expand_inputs(model):
    """SE layers whose input is a 1x1 convolution followed by BatchNorm: while tracing, each
    squeezes that convolution's input and maps the mean through the convolution and the
    BatchNorm, instead of averaging the convolution's (wider) output.

    Both are affine per position, so the spatial mean passes through them exactly (up to
    float rounding). In SE-ResNet-50's bottlenecks the convolution widens 64 -> 256 channels,
    so the squeeze reads a quarter of the data; and with the mean no longer reading the
    expanded map, OpenVINO can compute the 1x1 convolution of a stage's last block only at the
    positions the next stage's stride-2 convolutions keep (its `StridesOptimization` stops
    at any other reader of a tensor). Measured in benchmarks/se_expressions.py.
    """
    matches = list(_expand_pairs(model))
    expand_inputs = {}

    def recording(convolution):
        original = convolution.call

        def call(inputs):
            expand_inputs[id(convolution)] = inputs
            return original(inputs)

        return call

    def squeezing(layer):
        convolution, norm = matches_by_layer[id(layer)]

        def excitation(inputs):
            # mean(BN(conv(h))) = mean(h) @ K * scale + shift, and the SE's first layer is
            # linear too: the three fold into one (C_in, C') matrix and a bias, so the
            # squeeze costs one small matmul, as the original's does.
            kernel = ops.reshape(convolution.kernel, convolution.kernel.shape[2:])
            scale = ops.rsqrt(norm.moving_variance + norm.epsilon)
            if norm.scale:
                scale = scale * norm.gamma
            shift = -norm.moving_mean * scale
            if convolution.use_bias:
                shift = shift + convolution.bias * scale
            if norm.center:
                shift = shift + norm.beta
            reduce = ops.matmul(kernel * scale, layer.reduce_kernel)
            bias = ops.matmul(shift[None], layer.reduce_kernel)[0]
            if layer.use_bias:
                bias = bias + layer.reduce_bias
            pooled = ops.mean(expand_inputs[id(convolution)], axis=(1, 2))
            return layer.excite(ops.matmul(pooled, reduce) + bias)

        return excitation

    matches_by_layer = {id(layer): (convolution, norm) for layer, convolution, norm in matches}
    convolutions = [convolution for _, convolution, _ in matches]
    # `excitation`, not `call`: the scale is still applied by whichever `call` runs (the
    # layer's own, or onnx.py's NCHW one).
    with (
        shadowed(convolutions, "call", recording),
        shadowed([layer for layer, _, _ in matches], "excitation", squeezing),
    ):
        yield


# The rewrites both exporters apply by default (benchmarks/se_expressions.py measures each).
SE_REWRITES = (pooled_expand_inputs,)


def applied(rewrites, model):
    """One context manager entering each of `rewrites` (called with `model`)."""
    stack = contextlib.ExitStack()
    for rewrite in rewrites:
        stack.enter_context(rewrite(model))
    return stack


def _expand_pairs(model):
    """(SE layer, its 1x1 convolution, the BatchNorm between them) for every float32
    channels_last average-squeeze SE layer fed by BatchNorm(Conv2D 1x1), nothing between."""
    producers = {}
    for layer in all_layers(model):
        if not isinstance(layer, keras.layers.InputLayer):
            producers[id(layer.output)] = layer
    for layer in all_layers(model):
        if not (
            isinstance(layer, SqueezeExcite)
            and layer.data_format == "channels_last"
            and layer.pooling == "avg"
            and len(layer.input.shape) == 4
            # (mixed precision would mix float16 activations with float32 BatchNorm moments)
            and layer.compute_dtype == "float32"
        ):
            continue
        norm = producers.get(id(layer.input))
        if not isinstance(norm, keras.layers.BatchNormalization) or norm.axis not in (-1, 3):
            continue
        convolution = producers.get(id(norm.input))
        if _is_pointwise(convolution):
            yield layer, convolution, norm


def _is_pointwise(layer):
    """A plain 1x1 Conv2D: stride 1, no groups or dilation, linear, channels_last."""
    return (
        type(layer) is keras.layers.Conv2D
        and tuple(layer.kernel_size) == (1, 1)
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.groups == 1
        and layer.data_format == "channels_last"
        and layer.activation is keras.activations.linear
    )
