"""Multiply-add (MAC) counter for built Keras functional models.

The paper's "FLOPs" are multiply-adds of convolutions and fully connected layers (the
ResNet-50 layout counts 3.858 G, the paper says 3.86 GFLOPs), so that is what is counted here:
Conv1D/2D/3D (with `groups`), depthwise, separable and transposed convolutions, Dense (also on
rank > 2 inputs) and `SqueezeExcite`. BatchNorm, activations, pooling, element-wise adds and
biases are not counted, by the same convention.
"""

import math

import keras

from se_keras.layers import SqueezeExcite


def _spatial(shape, data_format):
    """(spatial dims, channels) of a (batch, ...) shape."""
    if data_format == "channels_first":
        return shape[2:], shape[1]
    return shape[1:-1], shape[-1]


def _conv(layer, in_shape, out_shape):
    out_hw, cout = _spatial(out_shape, layer.data_format)
    _, cin = _spatial(in_shape, layer.data_format)
    groups = getattr(layer, "groups", 1)
    return math.prod(layer.kernel_size) * (cin // groups) * cout * math.prod(out_hw)


def _conv_transpose(layer, in_shape, out_shape):
    # Every input position scatters a full kernel, so the count follows the input size.
    in_hw, cin = _spatial(in_shape, layer.data_format)
    _, cout = _spatial(out_shape, layer.data_format)
    return math.prod(layer.kernel_size) * cin * cout * math.prod(in_hw)


def _depthwise(layer, in_shape, out_shape):
    out_hw, cout = _spatial(out_shape, layer.data_format)  # cout = cin * depth_multiplier
    return math.prod(layer.kernel_size) * cout * math.prod(out_hw)


def _separable(layer, in_shape, out_shape):
    out_hw, cout = _spatial(out_shape, layer.data_format)
    _, cin = _spatial(in_shape, layer.data_format)
    mid = cin * layer.depth_multiplier
    return (math.prod(layer.kernel_size) * mid + mid * cout) * math.prod(out_hw)


def _dense(layer, in_shape, out_shape):
    # Dense on (batch, ..., in) applies the same matrix at every leading position.
    return in_shape[-1] * layer.units * math.prod(out_shape[1:-1])


def _squeeze_excite(layer, in_shape, out_shape):
    hw, _ = _spatial(in_shape, layer.data_format)
    pixels = math.prod(hw) * layer.channels
    # Squeeze: one add per input value (max pooling: one compare, counted alike);
    # excitation: the two FC layers; scale: one multiply per input value.
    if layer.pooling is None:  # no squeeze: the FC layers run at every position
        return 2 * layer.channels * layer.hidden * math.prod(hw) + pixels
    return pixels + 2 * layer.channels * layer.hidden + pixels


_COUNTERS = {
    keras.layers.Conv1D: _conv,
    keras.layers.Conv2D: _conv,
    keras.layers.Conv3D: _conv,
    keras.layers.Conv1DTranspose: _conv_transpose,
    keras.layers.Conv2DTranspose: _conv_transpose,
    keras.layers.Conv3DTranspose: _conv_transpose,
    keras.layers.DepthwiseConv1D: _depthwise,
    keras.layers.DepthwiseConv2D: _depthwise,
    keras.layers.SeparableConv1D: _separable,
    keras.layers.SeparableConv2D: _separable,
    keras.layers.Dense: _dense,
    SqueezeExcite: _squeeze_excite,
}


def _counter(layer):
    # Walk the MRO so subclasses of the counted layers are counted too.
    for cls in type(layer).__mro__:
        if cls in _COUNTERS:
            return _COUNTERS[cls]
    return None


def _check_input_shape(model):
    for tensor in model.inputs:
        if any(dim is None for dim in tensor.shape[1:]):
            raise ValueError(
                f"count_macs needs a model with a fully defined input shape; model "
                f"'{model.name}' has None in a non-batch dimension. "
                f"Received: model input shape={tuple(tensor.shape)}"
            )


def _calls(model):
    """(layer, input shape, output shape) for every layer of the model.

    Uses the public `layer.input` / `layer.output`, i.e. each layer's first call: a layer
    shared between several calls is counted once (none of the zoo's models shares layers).
    """
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(f"count_macs needs a built Keras model. Received: model={model!r}")
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        inputs = keras.tree.flatten(layer.input)
        yield layer, tuple(inputs[0].shape), tuple(keras.tree.flatten(layer.output)[0].shape)


def count_macs(model):
    """Multiply-adds of one forward pass of one example through `model`.

    Nested models are counted recursively. Raises ValueError if an input shape (of the
    model or of a nested model) has an unknown non-batch dimension.

    Example:
    >>> count_macs(keras.applications.ResNet50(weights=None))
    3857973248
    """
    _check_input_shape(model)
    total = 0
    for layer, in_shape, out_shape in _calls(model):
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
        elif (count := _counter(layer)) is not None:
            total += count(layer, in_shape, out_shape)
    return total


def format_macs(n):
    """Short human form: 3857973248 -> "3.86G", 568740352 -> "569M"."""
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        # Switch unit slightly early so 999.96M prints as "1G", not "1e+03M".
        if abs(n) >= scale * (1 - 5e-4):
            return f"{n / scale:.3g}{unit}"
    return str(n)
