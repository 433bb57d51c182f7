"""An SE block's gate recomputed in NumPy (float64) from a built layer's own weights: the
independent reference of the ablation and analysis tests (paper eqs. 2-3)."""

import numpy as np

GATES = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "hard_sigmoid": lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
}


def numpy_gate(u, layer, per_position=False):
    """The gate of `layer` (a built SqueezeExcite with a ReLU hidden activation) on input `u`:
    (N, C); with no squeeze, (N, ..., C) in the layer's layout, or with `per_position=False`
    averaged over space to (N, C)."""
    channels_first = layer.data_format == "channels_first"
    u = (
        np.moveaxis(np.asarray(u, np.float64), 1, -1)
        if channels_first
        else np.asarray(u, np.float64)
    )
    spatial = tuple(range(1, u.ndim - 1))
    z = {"avg": lambda: u.mean(axis=spatial), "max": lambda: u.max(axis=spatial), None: lambda: u}[
        layer.pooling
    ]()
    w1, w2 = (np.asarray(w.numpy(), np.float64) for w in (layer.reduce_kernel, layer.expand_kernel))
    b1, b2 = (
        (np.asarray(w.numpy(), np.float64) for w in (layer.reduce_bias, layer.expand_bias))
        if layer.use_bias
        else (0.0, 0.0)
    )
    s = GATES[layer.gate](np.maximum(z @ w1 + b1, 0.0) @ w2 + b2)
    if layer.pooling is None and not per_position:
        return s.mean(axis=spatial)
    return np.moveaxis(s, -1, 1) if channels_first and s.ndim > 2 else s


def small_se_network(keras):
    """A three-block SE network for 32x32 inputs and 10 classes, one block per squeeze mode
    (avg, max, none), for tests that train or switch backends (keras passed in, imported
    after KERAS_BACKEND is set)."""
    from se_keras.layers import SqueezeExcite

    inputs = keras.Input((32, 32, 3))
    x = inputs
    for index, (filters, pooling) in enumerate(((16, "avg"), (32, "max"), (32, None)), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"conv{index}_bn")(x)
        x = keras.layers.ReLU(name=f"conv{index}_relu")(x)
        x = SqueezeExcite(ratio=4, pooling=pooling, name=f"conv{index}_se")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{index}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)
