"""Copying a base network's weights into an SE network, by name or by structure."""

import os

import keras
import numpy as np
import pytest

import se_keras
from se_keras.applications.base_weights import copy_weights
from se_keras.layers import SqueezeExcite


def _net(se, names, dense_name="top"):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="stem" if names else None)(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn" if names else None)(x)
    if se:
        x = SqueezeExcite(ratio=2, name="stem_se")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name=dense_name if names else None)(x))


@pytest.mark.parametrize("match, names", [("name", True), ("structure", False)])
def test_copy_gives_the_base_outputs_when_se_is_neutral(match, names):
    base, se = _net(False, names), _net(True, names)
    assert copy_weights(base, se, match) == 3
    layer = se.get_layer("stem_se")  # a gate of exactly 1 makes SE the identity
    layer.expand_kernel.assign(np.zeros(layer.expand_kernel.shape))
    layer.expand_bias.assign(np.full(layer.expand_bias.shape, 50.0))
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype("float32")
    assert np.abs(se.predict(x, verbose=0) - base.predict(x, verbose=0)).max() <= 1e-5


def test_mismatches_are_named_and_change_nothing():
    base, se = _net(False, True), _net(True, True, dense_name="classifier")
    before = se.get_layer("stem").kernel.numpy().copy()
    with pytest.raises(ValueError, match="base layer 'top' has no layer of that name"):
        copy_weights(base, se, "name")
    np.testing.assert_array_equal(se.get_layer("stem").kernel.numpy(), before)
    with pytest.raises(ValueError, match="Received: match='order'"):
        copy_weights(base, se, "order")


def test_imagenet_base_offline_names_the_file_and_where_to_put_it(monkeypatch, tmp_path):
    # Every download goes to a closed port on the loopback interface: offline, for certain.
    for variable in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(OSError) as error:
        se_keras.applications.SEMobileNet(
            weights="imagenet_base", input_shape=(128, 128, 3), include_top=False
        )
    message = str(error.value)
    assert "mobilenet_1_0_128_tf_no_top.h5 from https://" in message
    assert os.path.join(str(tmp_path), "models") in message and "weights='imagenet_base'" in message
    assert [name for _, _, names in os.walk(tmp_path) for name in names] == []
