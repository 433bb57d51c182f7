"""ShuffleNet's channel operations: channel shuffle (Zhang et al. 2018) and channel split
(Ma et al. 2018), as layers built from `keras.ops` only.

Both are written so that TensorFlow Lite maps them to builtin operators: the shuffle is one
RESHAPE, one TRANSPOSE and one RESHAPE with constant shapes (the batch as -1, every other
dimension static when the input shape is), the split one SPLIT.
"""

import keras
from keras import ops

from se_keras.utils.validation import check_choice, check_positive


def _data_format(value):
    return check_choice(
        "data_format",
        value or keras.config.image_data_format(),
        ("channels_last", "channels_first"),
    )


def _channels(layer, input_shape):
    if len(input_shape) < 3:
        raise ValueError(
            f"{type(layer).__name__} expects an input of rank >= 3 (batch, spatial..., "
            f"channels). Received: input_shape={tuple(input_shape)}"
        )
    channels = input_shape[-1 if layer.data_format == "channels_last" else 1]
    if channels is None or channels % layer.groups:
        raise ValueError(
            f"{type(layer).__name__} needs a known number of channels divisible by "
            f"groups={layer.groups}. Received: input_shape={tuple(input_shape)}"
        )
    return channels


@keras.saving.register_keras_serializable(package="se_keras")
class ChannelShuffle(keras.layers.Layer):
    """Channel shuffle: channel `g * (C / groups) + k` moves to `k * groups + g`.

    After a grouped convolution the channels come in `groups` contiguous blocks; the shuffle
    interleaves them so that the next grouped convolution sees every block. Computed as
    reshape to `(..., groups, C / groups)`, swap the last two axes, reshape back.

    Args:
        groups: number of channel groups; must divide the number of channels.
        data_format: `"channels_last"`, `"channels_first"` or None (Keras' global setting).

    Input shape: a tensor of rank >= 3 whose channel count is a multiple of `groups`.
    Output shape: same as the input.

    Example: with `groups=2`, channels `[0, 1, 2, 3, 4, 5]` come out as `[0, 3, 1, 4, 2, 5]`.
    """

    def __init__(self, groups, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.groups = check_positive("groups", groups)
        self.data_format = _data_format(data_format)

    def build(self, input_shape):
        self.channels = _channels(self, input_shape)

    def call(self, inputs):
        rank = len(inputs.shape)
        # Static sizes where known (the TFLite graph then has constant shapes), dynamic
        # ones otherwise; the batch is always -1.
        dynamic = ops.shape(inputs)
        sizes = [s if s is not None else d for s, d in zip(inputs.shape, dynamic)]
        per_group = self.channels // self.groups
        if self.data_format == "channels_last":
            spatial = sizes[1:-1]
            x = ops.reshape(inputs, (-1, *spatial, self.groups, per_group))
            perm = (*range(rank - 1), rank, rank - 1)
            x = ops.transpose(x, perm)
            return ops.reshape(x, (-1, *spatial, self.channels))
        spatial = sizes[2:]
        x = ops.reshape(inputs, (-1, self.groups, per_group, *spatial))
        x = ops.transpose(x, (0, 2, 1, *range(3, rank + 1)))
        return ops.reshape(x, (-1, self.channels, *spatial))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups, data_format=self.data_format)
        return config


@keras.saving.register_keras_serializable(package="se_keras")
class ChannelSplit(keras.layers.Layer):
    """Splits the channels into `groups` equal, contiguous parts; returns a list.

    Args:
        groups: number of parts; must divide the number of channels. Default 2
            (ShuffleNet V2's channel split).
        data_format: `"channels_last"`, `"channels_first"` or None (Keras' global setting).
    """

    def __init__(self, groups=2, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.groups = check_positive("groups", groups)
        self.data_format = _data_format(data_format)

    def build(self, input_shape):
        self.channels = _channels(self, input_shape)

    def call(self, inputs):
        axis = -1 if self.data_format == "channels_last" else 1
        return ops.split(inputs, self.groups, axis=axis)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        axis = -1 if self.data_format == "channels_last" else 1
        shape[axis] = shape[axis] // self.groups
        return [tuple(shape)] * self.groups

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups, data_format=self.data_format)
        return config
