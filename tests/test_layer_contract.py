"""One layer contract, applied to every se-keras layer (after keras' own `run_layer_test`,
restated without importing keras.src): config round trip, `.keras` save and load, eager and
compiled calls, a training step that reaches every weight, mixed precision, channels_first."""

import keras
import numpy as np
import pytest

from se_keras.layers import ChannelShuffle, ChannelSplit, SqueezeExcite

# name: (layer factory taking data_format, channels-last input shape without the batch)
LAYERS = {
    "SqueezeExcite": (lambda fmt: SqueezeExcite(ratio=4, data_format=fmt), (6, 5, 16)),
    "SqueezeExcite-max-hard": (
        lambda fmt: SqueezeExcite(ratio=4, pooling="max", gate="hard_sigmoid", data_format=fmt),
        (6, 5, 16),
    ),
    "ChannelShuffle": (lambda fmt: ChannelShuffle(4, data_format=fmt), (6, 5, 16)),
    "ChannelSplit": (lambda fmt: ChannelSplit(data_format=fmt), (6, 5, 16)),
}


def _model(factory, shape, fmt="channels_last", convolution=True):
    """The layer after a convolution (so that a training step has something upstream to
    reach; `convolution=False` leaves it out: TensorFlow's CPU convolution has no
    channels-first kernel), its outputs concatenated."""
    inputs = keras.Input(shape)
    x = inputs
    if convolution:
        channels = shape[0 if fmt == "channels_first" else -1]
        x = keras.layers.Conv2D(channels, 1, data_format=fmt)(x)
    outputs = factory(fmt)(x)
    if isinstance(outputs, (list, tuple)):
        axis = 1 if fmt == "channels_first" else -1
        outputs = keras.layers.Concatenate(axis=axis)(list(outputs))
    return keras.Model(inputs, outputs)


def _images(shape, n=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype("float32")


def _layer(model, kind):
    return next(layer for layer in model.layers if type(layer).__name__ == kind.split("-")[0])


@pytest.fixture(params=sorted(LAYERS))
def case(request):
    factory, shape = LAYERS[request.param]
    return request.param, factory, shape


def test_config_round_trip(case):
    kind, factory, _ = case
    layer = factory(None)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert (
        keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(layer)
        ).get_config()
        == layer.get_config()
    ), kind


def test_keras_file_round_trip(case, tmp_path):
    _, factory, shape = case
    model = _model(factory, shape)
    x = _images(shape)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects: the layers are registered
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_eager_and_compiled_calls_agree(case):
    _, factory, shape = case
    model = _model(factory, shape)
    x = _images(shape)
    eager = keras.ops.convert_to_numpy(model(x, training=False))
    model.compile(jit_compile=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), eager, atol=1e-6)


def test_a_training_step_reaches_every_weight(case):
    kind, factory, shape = case
    model = _model(factory, shape)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [w.numpy().copy() for w in model.trainable_weights]
    target = _images(model.output.shape[1:], seed=1)
    model.fit(_images(shape), target, epochs=1, batch_size=2, verbose=0)
    changed = [np.abs(w.numpy() - b).max() > 0 for w, b in zip(model.trainable_weights, before)]
    assert all(changed), kind  # the layer's own weights and, through it, the convolution's
    assert len(model.trainable_weights) == 2 + len(_layer(model, kind).trainable_weights)


def test_mixed_precision(case):
    kind, factory, shape = case
    x = _images(shape)
    reference = _model(factory, shape)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = _model(factory, shape)
        mixed.set_weights(reference.get_weights())
        output = mixed.predict(x, verbose=0)
        assert _layer(mixed, kind).compute_dtype == "float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    expected = reference.predict(x, verbose=0)
    assert np.abs(output.astype("float32") - expected).max() <= 1e-2 * np.abs(expected).max()


def test_channels_first_is_channels_last_transposed(case):
    _, factory, shape = case
    last = _model(factory, shape, convolution=False)
    first = _model(factory, (shape[-1], *shape[:-1]), "channels_first", convolution=False)
    first.set_weights(last.get_weights())
    x = _images(shape)
    output = first.predict(np.moveaxis(x, -1, 1), verbose=0)
    np.testing.assert_allclose(np.moveaxis(output, 1, -1), last.predict(x, verbose=0), atol=1e-6)
