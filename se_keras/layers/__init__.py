"""Layers shared by every se-keras family."""

from se_keras.layers.channel_shuffle import ChannelShuffle, ChannelSplit
from se_keras.layers.squeeze_excite import SqueezeExcite, bottleneck_width

__all__ = ["ChannelShuffle", "ChannelSplit", "SqueezeExcite", "bottleneck_width"]
