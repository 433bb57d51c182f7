"""Layers shared by every se-keras family."""

from se_keras.layers.squeeze_excite import SqueezeExcite, bottleneck_width

__all__ = ["SqueezeExcite", "bottleneck_width"]
