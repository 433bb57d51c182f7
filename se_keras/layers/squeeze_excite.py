"""The Squeeze-and-Excitation block (Hu et al., 2018, equations 2-4) as one Keras layer."""

import numbers

import keras
from keras import ops

from se_keras.utils.validation import check_bool, check_choice, check_positive

# None: no squeeze, the paper's ablation (section 6.2): the two FC layers act as 1x1
# convolutions at every position, so the gate varies over space.
_POOLINGS = ("avg", "max", None)
# The paper's excitation ablation (section 6.3) compares sigmoid, tanh and ReLU gates;
# hard sigmoid is the mobile-friendly approximation used by MobileNetV3.
_GATES = {
    "sigmoid": ops.sigmoid,
    "hard_sigmoid": ops.hard_sigmoid,
    "tanh": ops.tanh,
    "relu": ops.relu,
}


def bottleneck_width(channels, ratio=16, divisor=1, min_width=1, round_limit=0.9):
    """Width of the excitation bottleneck: `channels / ratio` rounded to `divisor`.

    With `divisor=1` this is `channels // ratio` (the released models' rule); a larger divisor
    rounds to the nearest multiple (at least one `divisor`), adding one `divisor` where that
    went below `round_limit * channels / ratio` (MobileNet's 0.9: never more than 10% below;
    timm's SE layers use 0, no correction). `min_width` is applied last.
    """
    if divisor == 1:
        return max(min_width, int(channels // ratio))
    target = channels / ratio
    # Round to the nearest multiple, but never to zero (as in MobileNet's `_make_divisible`),
    # and apply `min_width` last so that the rounding cannot yield a non-multiple such as 9.
    width = max(divisor, int(target + divisor / 2) // divisor * divisor)
    if width < round_limit * target:
        width += divisor
    return max(min_width, width)


def _check_round_limit(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(
            "Invalid value for argument `round_limit`: expected a number from 0 to 1. "
            f"Received: round_limit={value!r}"
        )
    return float(value)


@keras.saving.register_keras_serializable(package="se_keras")
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-Excitation: recalibrates channels by a gate computed from global context.

    `s = gate(W2 act(W1 pool(U) + b1) + b2)`, output `s_c * u_c`. The two fully connected
    layers are stored as `(C, C')` and `(C', C)` matrices (equivalent to the 1x1 convolutions
    of the released models).

    Args:
        ratio: reduction ratio r; the bottleneck has `channels / ratio` units. Default 16.
        width: explicit bottleneck width; overrides `ratio` when given.
        divisor: round the bottleneck width to a multiple of this. Default 1 (`C // r`).
        min_width: smallest bottleneck width. Default 1.
        round_limit: with `divisor > 1`, a width rounded below `round_limit * C / ratio`
            gets one more `divisor`. Default 0.9 (MobileNet's rule); timm's SE uses 0.
        pooling: squeeze operator, `"avg"` (default) or `"max"`; `None` skips the squeeze
            (the paper's "no squeeze" ablation, 22.93% top-1 and 4.27 GFLOPs for
            SE-ResNet-50 against 22.28% and 3.87: the FC layers act as 1x1 convolutions at
            every position and the gate varies over space).
        gate: excitation gate, `"sigmoid"` (default), `"hard_sigmoid"`, `"tanh"` or `"relu"`.
        activation: hidden activation between the two layers. Default `"relu"`.
        use_bias: whether the two layers have biases. Default True (as released); the
            paper's ablation runs (section 6, e.g. SE-ResNet-50 22.28% top-1 at r=16, 28.1M
            parameters) remove them.
        data_format: `"channels_last"`, `"channels_first"` or None (Keras' global setting).
        kernel_initializer, bias_initializer: initialisers of the two layers.

    Input shape: a tensor of rank >= 3 with a known channel dimension.
    Output shape: same as the input.

    Example:
    >>> x = keras.random.normal((2, 8, 8, 64))
    >>> SqueezeExcite(ratio=16)(x).shape
    (2, 8, 8, 64)
    """

    def __init__(
        self,
        ratio=16,
        width=None,
        divisor=1,
        min_width=1,
        round_limit=0.9,
        pooling="avg",
        gate="sigmoid",
        activation="relu",
        use_bias=True,
        data_format=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.ratio = check_positive("ratio", ratio, integer=False)
        self.width = None if width is None else check_positive("width", width)
        self.divisor = check_positive("divisor", divisor)
        self.min_width = check_positive("min_width", min_width)
        self.round_limit = _check_round_limit(round_limit)
        self.pooling = check_choice("pooling", pooling, _POOLINGS)
        self.gate = check_choice("gate", gate, tuple(_GATES))
        self.data_format = check_choice(
            "data_format",
            data_format or keras.config.image_data_format(),
            ("channels_last", "channels_first"),
        )
        try:
            self.activation = keras.activations.get(activation)
        except ValueError as error:
            raise ValueError(
                f"Invalid value for argument `activation`: {error}. "
                f"Received: activation={activation!r}"
            ) from None
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(
                "SqueezeExcite expects an input of rank >= 3 (batch, spatial..., channels). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        channels = input_shape[-1 if self.data_format == "channels_last" else 1]
        if not channels:
            raise ValueError(
                "SqueezeExcite needs a known channel dimension of at least 1. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        hidden = self.width or bottleneck_width(
            channels, self.ratio, self.divisor, self.min_width, self.round_limit
        )
        self.channels, self.hidden = channels, hidden
        self.reduce_kernel = self.add_weight(
            shape=(channels, hidden), initializer=self.kernel_initializer, name="reduce_kernel"
        )
        self.expand_kernel = self.add_weight(
            shape=(hidden, channels), initializer=self.kernel_initializer, name="expand_kernel"
        )
        if self.use_bias:
            self.reduce_bias = self.add_weight(
                shape=(hidden,), initializer=self.bias_initializer, name="reduce_bias"
            )
            self.expand_bias = self.add_weight(
                shape=(channels,), initializer=self.bias_initializer, name="expand_bias"
            )

    def excitation(self, inputs):
        """The per-channel gate `s`, shape (batch, channels); with `pooling=None` one gate
        per position, shaped like `inputs`."""
        rank = len(inputs.shape)
        if self.pooling is None:
            if self.data_format == "channels_first":  # the FCs act on the last axis
                return ops.moveaxis(self._gate(ops.moveaxis(inputs, 1, -1)), -1, 1)
            return self._gate(inputs)
        if self.data_format == "channels_last":
            spatial = tuple(range(1, rank - 1))
        else:
            spatial = tuple(range(2, rank))
        pool = ops.mean if self.pooling == "avg" else ops.max
        return self._gate(pool(inputs, axis=spatial))

    def _gate(self, z):
        """gate(W2 act(W1 z + b1) + b2) over the last axis of `z`."""
        h = ops.matmul(z, self.reduce_kernel)
        if self.use_bias:
            h = h + self.reduce_bias
        return self.excite(h)

    def excite(self, hidden):
        """gate(W2 act(hidden) + b2): the gate from the bottleneck's pre-activation
        `hidden = W1 z + b1` (the export's rewrites compute that one their own way)."""
        s = ops.matmul(self.activation(hidden), self.expand_kernel)
        if self.use_bias:
            s = s + self.expand_bias
        return _GATES[self.gate](s)

    def call(self, inputs):
        s = self.excitation(inputs)
        if self.pooling is None:
            return inputs * s
        # Broadcast the gate over the spatial axes: (N, C) -> (N, 1, ..., C) or (N, C, 1, ...).
        rank = len(inputs.shape)
        if self.data_format == "channels_last":
            s = ops.reshape(s, (-1,) + (1,) * (rank - 2) + (self.channels,))
        else:
            s = ops.reshape(s, (-1, self.channels) + (1,) * (rank - 2))
        return inputs * s

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            ratio=self.ratio,
            width=self.width,
            divisor=self.divisor,
            min_width=self.min_width,
            round_limit=self.round_limit,
            pooling=self.pooling,
            gate=self.gate,
            activation=keras.activations.serialize(self.activation),
            use_bias=self.use_bias,
            data_format=self.data_format,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
