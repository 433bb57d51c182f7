"""Tests of the SqueezeExcite layer against an independent NumPy reference (paper eqs. 2-4)."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import pytest

from se_keras.layers import SqueezeExcite, bottleneck_width

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="these tests run on the TensorFlow backend"
)

SE_WEIGHTS = ("reduce_kernel", "expand_kernel", "reduce_bias", "expand_bias")


# --------------------------------------------------------------------------------------------
# Independent NumPy reference
# --------------------------------------------------------------------------------------------

_NP_GATES = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "hard_sigmoid": lambda x: np.minimum(np.maximum(x + 3.0, 0.0), 6.0) / 6.0,  # relu6(x+3)/6
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
}
_NP_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "swish": lambda x: x / (1.0 + np.exp(-x)),
}


def reference_se(
    u, w1, b1, w2, b2, pooling="avg", gate="sigmoid", activation="relu", channels_first=False
):
    """Eq. 2: z = pool over spatial axes; eq. 3: s = gate(W2 act(W1 z + b1) + b2); eq. 4: s*u."""
    u = np.asarray(u, dtype=np.float64)
    if channels_first:
        u = np.moveaxis(u, 1, -1)
    spatial = tuple(range(1, u.ndim - 1))
    z = u.mean(axis=spatial) if pooling == "avg" else u.max(axis=spatial)
    h = z @ w1
    if b1 is not None:
        h = h + b1
    s = _NP_ACTIVATIONS[activation](h) @ w2
    if b2 is not None:
        s = s + b2
    s = _NP_GATES[gate](s)
    out = u * s.reshape((s.shape[0],) + (1,) * (u.ndim - 2) + (s.shape[1],))
    if channels_first:
        out = np.moveaxis(out, -1, 1)
    return out


def random_se_weights(rng, channels, hidden, use_bias=True):
    """Kernels and clearly non-zero biases, scaled so the gates are not saturated."""
    w1 = rng.normal(0.0, 1.0 / np.sqrt(channels), (channels, hidden)).astype("float32")
    w2 = rng.normal(0.0, 1.0 / np.sqrt(hidden), (hidden, channels)).astype("float32")
    if not use_bias:
        return w1, None, w2, None
    b1 = rng.normal(0.0, 0.5, (hidden,)).astype("float32")
    b2 = rng.normal(0.0, 0.5, (channels,)).astype("float32")
    return w1, b1, w2, b2


def assign_weights(layer, w1, b1, w2, b2):
    """Set weights by name, not by position."""
    layer.reduce_kernel.assign(w1)
    layer.expand_kernel.assign(w2)
    if b1 is not None:
        layer.reduce_bias.assign(b1)
        layer.expand_bias.assign(b2)


def built_layer(input_shape, rng, **kwargs):
    layer = SqueezeExcite(**kwargs)
    layer.build(input_shape)
    weights = random_se_weights(rng, layer.channels, layer.hidden, kwargs.get("use_bias", True))
    assign_weights(layer, *weights)
    return layer, weights


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --------------------------------------------------------------------------------------------
# Numerics against the reference
# --------------------------------------------------------------------------------------------

REFERENCE_CASES = {
    "avg-sigmoid": dict(pooling="avg", gate="sigmoid"),
    "max-sigmoid": dict(pooling="max", gate="sigmoid"),
    "avg-hard_sigmoid": dict(pooling="avg", gate="hard_sigmoid"),
    "max-hard_sigmoid": dict(pooling="max", gate="hard_sigmoid"),
    "avg-tanh": dict(pooling="avg", gate="tanh"),
    "avg-relu": dict(pooling="avg", gate="relu"),
    "no-bias": dict(use_bias=False),
    "no-bias-max-tanh": dict(use_bias=False, pooling="max", gate="tanh"),
    "explicit-width": dict(width=5),
    "swish-activation": dict(activation="swish"),
    "channels_first-avg": dict(data_format="channels_first"),
    "channels_first-max-hard": dict(
        data_format="channels_first", pooling="max", gate="hard_sigmoid"
    ),
    "rank3": dict(shape=(3, 7, 32)),
    "rank5": dict(shape=(2, 3, 4, 5, 32)),
    "rank5-channels_first": dict(shape=(2, 32, 3, 4, 5), data_format="channels_first"),
}


@pytest.mark.parametrize("case", list(REFERENCE_CASES), ids=list(REFERENCE_CASES))
def test_matches_numpy_reference(case, rng):
    kwargs = dict(REFERENCE_CASES[case])
    channels_first = kwargs.get("data_format") == "channels_first"
    # Non-square spatial extent so a wrong reduction axis cannot go unnoticed.
    shape = kwargs.pop("shape", (3, 32, 5, 6) if channels_first else (3, 5, 6, 32))
    kwargs.setdefault("ratio", 4)
    layer, (w1, b1, w2, b2) = built_layer(shape, rng, **kwargs)
    if "width" in kwargs:
        assert layer.hidden == kwargs["width"]
    x = rng.normal(0.0, 1.0, shape).astype("float32")

    expected = reference_se(
        x,
        w1,
        b1,
        w2,
        b2,
        pooling=kwargs.get("pooling", "avg"),
        gate=kwargs.get("gate", "sigmoid"),
        activation=kwargs.get("activation", "relu"),
        channels_first=channels_first,
    )
    actual = keras.ops.convert_to_numpy(layer(x))
    assert actual.shape == x.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


def test_biases_change_the_output(rng):
    """The reference comparison would be blind to biases if they were ignored and zero."""
    shape = (2, 4, 4, 16)
    layer, weights = built_layer(shape, rng, ratio=4)
    x = rng.normal(size=shape).astype("float32")
    with_bias = reference_se(x, *weights)
    without_bias = reference_se(x, weights[0], None, weights[2], None)
    assert np.max(np.abs(with_bias - without_bias)) > 1e-2
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), with_bias, atol=1e-5)


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_channels_first_equals_channels_last_on_transposed_input(pooling, rng):
    shape_last = (3, 5, 7, 24)
    last, weights = built_layer(
        shape_last, rng, ratio=4, pooling=pooling, data_format="channels_last"
    )
    first = SqueezeExcite(ratio=4, pooling=pooling, data_format="channels_first")
    first.build((3, 24, 5, 7))
    assert first.channels == 24 and first.hidden == last.hidden == 6
    assign_weights(first, *weights)
    x = rng.normal(size=shape_last).astype("float32")
    out_last = keras.ops.convert_to_numpy(last(x))
    out_first = keras.ops.convert_to_numpy(first(np.transpose(x, (0, 3, 1, 2))))
    np.testing.assert_allclose(np.transpose(out_first, (0, 2, 3, 1)), out_last, atol=1e-6)


def test_data_format_none_follows_global_setting():
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        layer = SqueezeExcite(ratio=4)
    finally:
        keras.config.set_image_data_format(previous)
    assert layer.data_format == "channels_first"
    layer.build((None, 16, 3, 3))
    assert layer.channels == 16 and tuple(layer.reduce_kernel.shape) == (16, 4)
    # The resolved format is stored, so the config does not depend on the global setting.
    assert SqueezeExcite.from_config(layer.get_config()).data_format == "channels_first"


# --------------------------------------------------------------------------------------------
# Bottleneck width
# --------------------------------------------------------------------------------------------


def make_divisible(value, divisor):
    """TF MobileNet's `_make_divisible` (min_value defaults to the divisor), written out here."""
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


@pytest.mark.parametrize(
    "channels, ratio, expected",
    [(64, 16, 4), (256, 16, 16), (100, 16, 6), (2048, 16, 128), (96, 2.5, 38), (8, 16, 1)],
)
def test_bottleneck_width_divisor_one_is_floor_division(channels, ratio, expected):
    assert bottleneck_width(channels, ratio) == expected == max(1, int(channels // ratio))


@pytest.mark.parametrize(
    "channels, ratio, expected",
    [
        (64, 16, 8),  # 4 rounds up to 8
        (48, 16, 8),  # 3 rounds down to 0, never allowed: 8
        (8, 16, 8),  # 0.5: one divisor
        (1024, 16, 64),  # already a multiple
        (68, 4, 16),  # 17 -> 16 (within 10%)
        (76, 4, 24),  # 19 -> 16 is > 10% below, so 24
        (100, 4, 24),  # 25 -> 24
        (84, 4, 24),  # 21 -> 24
    ],
)
def test_bottleneck_width_divisor_eight(channels, ratio, expected):
    assert bottleneck_width(channels, ratio, divisor=8) == expected


@pytest.mark.parametrize("divisor", [2, 4, 8, 16])
@pytest.mark.parametrize("ratio", [4, 16])
def test_bottleneck_width_rounding_rule(divisor, ratio):
    for channels in range(1, 1025):
        width = bottleneck_width(channels, ratio, divisor=divisor)
        target = channels / ratio
        assert width == make_divisible(target, divisor), channels
        assert width % divisor == 0 and width >= divisor, channels
        assert width >= 0.9 * target, channels


@pytest.mark.parametrize(
    "channels, ratio, divisor, min_width, expected",
    [
        (32, 16, 1, 8, 8),
        (1024, 16, 1, 8, 64),
        (1024, 16, 8, 128, 128),
        (1024, 16, 8, 8, 64),
        (16, 16, 8, 32, 32),
    ],
)
def test_bottleneck_width_min_width(channels, ratio, divisor, min_width, expected):
    assert bottleneck_width(channels, ratio, divisor, min_width) == expected


@pytest.mark.parametrize(
    "kwargs, hidden",
    [
        (dict(), 4),  # 64 // 16
        (dict(ratio=4), 16),
        (dict(ratio=16, divisor=8), 8),
        (dict(ratio=16, min_width=12), 12),
        (dict(ratio=16, width=5), 5),
        (dict(ratio=2, divisor=8, min_width=40, width=3), 3),  # width overrides everything
    ],
    ids=["default", "ratio4", "divisor8", "min_width12", "width5", "width-overrides-all"],
)
def test_layer_kernel_shapes_follow_the_width_rule(kwargs, hidden):
    layer = SqueezeExcite(**kwargs)
    layer.build((None, 7, 7, 64))
    assert layer.hidden == hidden
    assert tuple(layer.reduce_kernel.shape) == (64, hidden)
    assert tuple(layer.expand_kernel.shape) == (hidden, 64)
    assert tuple(layer.reduce_bias.shape) == (hidden,)
    assert tuple(layer.expand_bias.shape) == (64,)
    assert layer.count_params() == 64 * hidden * 2 + hidden + 64


def test_use_bias_false_has_only_kernels():
    layer = SqueezeExcite(ratio=4, use_bias=False)
    layer.build((None, 3, 3, 32))
    names = sorted(w.name for w in layer.weights)
    assert names == ["expand_kernel", "reduce_kernel"]
    assert layer.count_params() == 2 * 32 * 8


# --------------------------------------------------------------------------------------------
# Serialization
# --------------------------------------------------------------------------------------------


def test_get_config_round_trip(rng):
    layer = SqueezeExcite(
        ratio=8,
        divisor=8,
        min_width=4,
        pooling="max",
        gate="hard_sigmoid",
        activation="swish",
        use_bias=True,
        data_format="channels_last",
        kernel_initializer="he_normal",
        bias_initializer="ones",
        name="se_roundtrip",
    )
    shape = (2, 5, 4, 48)
    x = rng.normal(size=shape).astype("float32")
    expected = keras.ops.convert_to_numpy(layer(x))
    config = layer.get_config()
    assert config["ratio"] == 8 and config["divisor"] == 8 and config["min_width"] == 4
    assert config["pooling"] == "max" and config["gate"] == "hard_sigmoid"
    assert config["width"] is None and config["data_format"] == "channels_last"

    clone = SqueezeExcite.from_config(config)
    assert clone.get_config() == config
    clone.build(shape)
    assert clone.hidden == layer.hidden == 8
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(x)), expected)

    # The generic registry path (what `.keras` files use) resolves the class by its name.
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is SqueezeExcite and revived.get_config() == config


def test_width_and_use_bias_false_round_trip():
    layer = SqueezeExcite(width=3, use_bias=False, data_format="channels_first", gate="tanh")
    config = layer.get_config()
    clone = SqueezeExcite.from_config(config)
    assert clone.get_config() == config
    assert clone.width == 3 and clone.use_bias is False and clone.data_format == "channels_first"


def _small_model(layer, input_shape=(6, 5, 16)):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(16, 1, name="conv")(inputs)
    x = layer(x)
    outputs = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, outputs, name="se_small")


def test_keras_file_save_load_without_custom_objects(tmp_path, rng):
    layer = SqueezeExcite(ratio=4, pooling="max", gate="hard_sigmoid", name="se")
    model = _small_model(layer)
    assign_weights(layer, *random_se_weights(rng, layer.channels, layer.hidden))
    x = rng.normal(size=(3, 6, 5, 16)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x))

    path = tmp_path / "se_small.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects: the layer is registered

    restored = loaded.get_layer("se")
    assert type(restored) is SqueezeExcite
    assert restored.get_config() == layer.get_config()
    for name in SE_WEIGHTS:
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(getattr(restored, name)),
            keras.ops.convert_to_numpy(getattr(layer, name)),
        )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), expected, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Eager and compiled execution, training
# --------------------------------------------------------------------------------------------


def test_eager_equals_xla_compiled_predict(rng):
    layer = SqueezeExcite(ratio=4, name="se")
    model = _small_model(layer, input_shape=(None, None, 16))
    assign_weights(layer, *random_se_weights(rng, layer.channels, layer.hidden))
    x = rng.normal(size=(4, 7, 6, 16)).astype("float32")
    eager = keras.ops.convert_to_numpy(model(x, training=False))
    expected = reference_se(
        keras.ops.convert_to_numpy(model.get_layer("conv")(x)),
        *(
            keras.ops.convert_to_numpy(getattr(layer, n))
            for n in ("reduce_kernel", "reduce_bias", "expand_kernel", "expand_bias")
        ),
    ).mean(axis=(1, 2))
    np.testing.assert_allclose(eager, expected, atol=1e-5)

    model.compile(jit_compile=True)
    assert model.jit_compile is True
    compiled = model.predict(x, batch_size=4, verbose=0)
    np.testing.assert_allclose(compiled, eager, rtol=0, atol=1e-5)


def test_layer_under_tf_function_jit_compile(rng):
    import tensorflow as tf

    shape = (2, 5, 5, 24)
    layer, _ = built_layer(shape, rng, ratio=4, pooling="max", gate="hard_sigmoid")
    x = tf.constant(rng.normal(size=shape).astype("float32"))
    compiled = tf.function(lambda t: layer(t), jit_compile=True)(x)
    np.testing.assert_allclose(compiled.numpy(), layer(x).numpy(), rtol=0, atol=1e-5)


def test_gradient_tape_reaches_every_se_weight(rng):
    import tensorflow as tf

    shape = (8, 5, 5, 32)
    layer = SqueezeExcite(ratio=4)  # default initialisers: zero biases, as in real training
    x = tf.constant(rng.normal(size=shape).astype("float32"))
    target = tf.constant(rng.normal(size=shape).astype("float32"))
    layer.build(shape)
    assert sorted(w.name for w in layer.trainable_weights) == sorted(SE_WEIGHTS)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(layer(x) - target))
    grads = tape.gradient(loss, layer.trainable_weights)
    for variable, grad in zip(layer.trainable_weights, grads):
        assert grad is not None, variable.name
        grad = grad.numpy()
        assert np.all(np.isfinite(grad)), variable.name
        assert np.abs(grad).max() > 0, f"{variable.name} received no gradient"


def test_fit_step_updates_every_se_weight(rng):
    keras.utils.set_random_seed(1)
    layer = SqueezeExcite(ratio=4, name="se")
    model = _small_model(layer)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=True)
    x = rng.normal(size=(8, 6, 5, 16)).astype("float32")
    y = rng.normal(size=(8, 16)).astype("float32")
    before = {n: keras.ops.convert_to_numpy(getattr(layer, n)).copy() for n in SE_WEIGHTS}
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for name in SE_WEIGHTS:
        after = keras.ops.convert_to_numpy(getattr(layer, name))
        # Plain SGD: the change is -lr * gradient, so a change means a non-zero gradient.
        assert np.abs(after - before[name]).max() > 0, f"{name} was not updated"


# --------------------------------------------------------------------------------------------
# Mixed precision
# --------------------------------------------------------------------------------------------

# (elementwise rtol = atol, max |diff| / max |float32 output|). fp16 keeps a 10-bit mantissa
# (eps ~9.8e-4), bf16 a 7-bit one (eps ~7.8e-3); the input, the pooled vector, both matmuls, the
# gate and the product s*u are each rounded, so a few eps elementwise is the honest bound.
# Measured on this data: fp16 2.5e-3 / 8.5e-4, bf16 1.6e-2 / 6.6e-3.
_MIXED_TOLERANCE = {"mixed_float16": (5e-3, 2e-3), "mixed_bfloat16": (3e-2, 1e-2)}


@pytest.fixture(params=list(_MIXED_TOLERANCE))
def mixed_policy(request):
    keras.mixed_precision.set_dtype_policy(request.param)
    try:
        yield request.param
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


@pytest.mark.parametrize(
    "kwargs",
    [dict(gate="sigmoid"), dict(gate="hard_sigmoid", pooling="max")],
    ids=["avg-sigmoid", "max-hard_sigmoid"],
)
def test_mixed_precision_matches_float32(mixed_policy, kwargs, rng):
    shape = (4, 6, 6, 32)
    x = rng.normal(size=shape).astype("float32")
    weights = random_se_weights(rng, 32, 8)

    mixed = SqueezeExcite(ratio=4, **kwargs)
    mixed.build(shape)
    assign_weights(mixed, *weights)
    expected_dtype = mixed_policy.split("_")[1]
    assert mixed.compute_dtype == expected_dtype
    for variable in mixed.weights:
        assert variable.dtype == "float32", variable.name

    out = mixed(x)
    assert keras.backend.standardize_dtype(out.dtype) == expected_dtype
    out = keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))

    reference = SqueezeExcite(ratio=4, dtype="float32", **kwargs)
    reference.build(shape)
    assign_weights(reference, *weights)
    ref = keras.ops.convert_to_numpy(reference(x))
    np.testing.assert_allclose(ref, reference_se(x, *weights, **kwargs), atol=1e-5)

    elementwise, relative = _MIXED_TOLERANCE[mixed_policy]
    np.testing.assert_allclose(out, ref, rtol=elementwise, atol=elementwise)
    assert np.max(np.abs(out - ref)) / np.max(np.abs(ref)) <= relative
    # The low-precision path really ran: the output is not bit-identical to float32.
    assert np.max(np.abs(out - ref)) > 0


# --------------------------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value",
    [
        ("ratio", 0),
        ("ratio", -1),
        ("ratio", "16"),
        ("ratio", None),
        ("width", 0),
        ("width", -4),
        ("width", 2.5),
        ("divisor", 0),
        ("divisor", True),
        ("min_width", 0),
        ("pooling", "median"),
        ("gate", "softmax"),
        ("activation", "nope"),
        ("data_format", "nchw"),
    ],
)
def test_invalid_argument_names_argument_and_value(name, value):
    with pytest.raises(ValueError) as info:
        SqueezeExcite(**{name: value})
    message = str(info.value)
    assert f"`{name}`" in message
    assert f"{name}={value!r}" in message


def test_rank_two_input_is_rejected():
    layer = SqueezeExcite()
    with pytest.raises(ValueError, match=r"rank >= 3.*input_shape=\(2, 64\)"):
        layer(np.zeros((2, 64), "float32"))


@pytest.mark.parametrize(
    "data_format, shape",
    [("channels_last", (None, 4, 4, None)), ("channels_first", (None, None, 4, 4))],
)
def test_unknown_channel_dimension_is_rejected(data_format, shape):
    layer = SqueezeExcite(data_format=data_format)
    with pytest.raises(ValueError) as info:
        layer.build(shape)
    message = str(info.value)
    assert "channel" in message and f"input_shape={shape}" in message


def test_unknown_channel_dimension_in_functional_model():
    with pytest.raises(ValueError, match="known channel dimension"):
        SqueezeExcite()(keras.Input((None, None, None)))
