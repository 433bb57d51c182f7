"""The paper's remaining ablations: no squeeze, SE after the 3x3 convolution (section 6)."""

import keras
import numpy as np
import pytest

import se_keras
from se_keras.layers import SqueezeExcite
from se_keras.utils.flops import count_macs
from tests.numpy_se import numpy_gate


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _randomized(layer, shape, seed=0):
    """`layer` built for `shape`, with random kernels and clearly non-zero biases."""
    layer.build(shape)
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(0.0, 0.5, weight.shape))
    return layer


@pytest.mark.parametrize(
    "data_format, shape", [("channels_last", (2, 3, 5, 16)), ("channels_first", (2, 16, 3, 5))]
)
def test_no_squeeze_gates_every_position_like_numpy(data_format, shape):
    layer = _randomized(SqueezeExcite(ratio=4, pooling=None, data_format=data_format), shape)
    u = np.random.default_rng(1).normal(size=shape).astype("float32")
    gate = numpy_gate(u, layer, per_position=True)
    spatial = (1, 2) if data_format == "channels_last" else (2, 3)
    assert gate.shape == shape and gate.std(axis=spatial).min() > 0.01  # varies over space
    out = keras.ops.convert_to_numpy(layer(u))
    np.testing.assert_allclose(out, u * gate, rtol=1e-5, atol=1e-6)


def test_no_squeeze_config_keras_file_and_training(tmp_path):
    inputs = keras.Input((6, 6, 8))
    x = SqueezeExcite(ratio=2, pooling=None, name="se")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    config = model.get_layer("se").get_config()
    assert config["pooling"] is None
    assert SqueezeExcite.from_config(config).get_config() == config
    images = np.random.default_rng(0).normal(size=(4, 6, 6, 8)).astype("float32")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = [w.numpy().copy() for w in model.get_layer("se").weights]
    model.fit(images, np.arange(4) % 3, epochs=1, verbose=0)
    assert all(
        np.abs(w.numpy() - b).max() > 0 for w, b in zip(model.get_layer("se").weights, before)
    )
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        restored.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6
    )


def test_no_squeeze_se_resnet50_costs_the_papers_4_27_gflops():
    # Paper section 6.2: "no squeeze" SE-ResNet-50, 4.27 GFLOPs (multiply-adds) against 3.87;
    # the same parameters as the standard block.
    model = se_keras.applications.SEResNet50(weights=None, se_options={"pooling": None})
    assert abs(count_macs(model) / 4.27e9 - 1) <= 0.015
    assert trainable(model) == 28_088_024


def _producer(model, layer_name):
    tensor = model.get_layer(layer_name).input
    return next(layer.name for layer in model.layers if layer.output is tensor)


def test_se_after_the_3x3_convolution():
    # Paper section 6.5: SE_3x3 has 25.8M parameters (SE on the narrower 3x3 output).
    model = se_keras.applications.SEResNet50(weights=None, se_position="3x3")
    assert abs(trainable(model) / 25.8e6 - 1) <= 0.005
    assert _producer(model, "conv3_block2_se") == "conv3_block2_2_relu"
    assert _producer(model, "conv3_block2_3_conv") == "conv3_block2_se"
    assert model.get_layer("conv3_block2_se").channels == 128
    basic = se_keras.applications.SEResNet18(
        weights=None, se_position="3x3", include_top=False, input_shape=(32, 32, 3)
    )
    assert _producer(basic, "conv2_block1_se") == "conv2_block1_1_relu"
    assert _producer(basic, "conv2_block1_2_conv") == "conv2_block1_se"
    end = basic.get_layer("conv2_block1_2_bn").output  # the plain unit's end: no ReLU, no SE
    assert any(t is end for t in basic.get_layer("conv2_block1_add").input)
