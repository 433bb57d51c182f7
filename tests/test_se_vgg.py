"""SE-VGG-16/19 against keras.applications' VGG16/VGG19, torchvision's vgg16_bn and the paper."""

import keras
import numpy as np
import pytest

import se_keras
from se_keras import data
from se_keras.applications import se_vgg
from se_keras.applications.base_weights import copy_weights
from se_keras.layers import SqueezeExcite
from se_keras.utils.flops import count_macs

KERAS_BASES = {"se_vgg16": "VGG16", "se_vgg19": "VGG19"}
CONVS = {"se_vgg16": 13, "se_vgg19": 16}


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def images(shape, seed=0):
    # Caffe-preprocessed pixels are of order +-100; this keeps the random network's outputs
    # of order one.
    return np.random.default_rng(seed).uniform(-120, 120, shape).astype("float32")


def keep_scale(model):
    """Glorot kernels x sqrt(2) (He scaling): activations keep their order of magnitude
    through the ReLUs instead of shrinking layer after layer."""
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            layer.kernel.assign(layer.kernel.numpy() * np.sqrt(2.0))
    return model


def _producer(model, layer_name):
    tensor = model.get_layer(layer_name).input
    return next(layer.name for layer in model.layers if layer.output is tensor)


def test_registered_with_the_other_families():
    names = se_keras.applications.list_models()
    assert names.index("se_vgg16") + 1 == names.index("se_vgg19")
    assert se_keras.applications.family_module("se_vgg19") is se_vgg
    assert se_keras.applications.SEVGG16 is se_vgg.SEVGG16


@pytest.mark.parametrize("model_name, include_top", [("se_vgg16", True), ("se_vgg19", False)])
def test_plain_vgg_equals_keras_applications(model_name, include_top):
    kwargs = dict(
        input_shape=(32, 32, 3),
        classes=10,
        classifier_activation=None,
        include_top=include_top,
        pooling="max",
    )
    base = keep_scale(getattr(keras.applications, KERAS_BASES[model_name])(weights=None, **kwargs))
    ours = se_keras.applications.builder(model_name)(se_ratio=None, **kwargs)
    assert trainable(ours) == trainable(base) and ours.count_params() == base.count_params()
    weighted = [layer for layer in base.layers if layer.weights]
    assert [l.name for l in ours.layers if l.weights] == [l.name for l in weighted]
    assert copy_weights(base, ours, "name") == len(weighted)
    x = images((2, 32, 32, 3))
    expected = base.predict(x, verbose=0)
    assert expected.std() > 0.05  # a comparison of near-zero outputs would prove nothing
    assert np.abs(ours.predict(x, verbose=0) - expected).max() <= 1e-5


@pytest.mark.slow
def test_plain_vgg16_equals_keras_applications_at_224():
    base = keep_scale(keras.applications.VGG16(weights=None, classifier_activation=None))
    ours = se_vgg.SEVGG16(se_ratio=None, classifier_activation=None)
    assert copy_weights(base, ours, "name") == 16
    x = images((2, 224, 224, 3))
    expected = base.predict(x, verbose=0)
    assert expected.std() > 0.05
    assert np.abs(ours.predict(x, verbose=0) - expected).max() <= 1e-5


def test_imagenet_base_copies_the_keras_network(monkeypatch):
    """weights="imagenet_base" builds keras' VGG16 with weights="imagenet" (random weights
    here: no downloads) and copies every weighted layer by name; SE keeps its initialiser."""
    calls, made = [], []

    def offline_vgg16(**kwargs):
        calls.append(kwargs)
        made.append(keras.applications.vgg16.VGG16(**{**kwargs, "weights": None}))
        return made[-1]

    monkeypatch.setattr(keras.applications, "VGG16", offline_vgg16)
    model = se_vgg.SEVGG16(weights="imagenet_base", include_top=False, input_shape=(48, 48, 3))
    assert calls == [
        dict(include_top=False, weights="imagenet", input_shape=(48, 48, 3), classes=1000)
    ]
    for layer in (layer for layer in made[0].layers if layer.weights):
        for ours, theirs in zip(model.get_layer(layer.name).weights, layer.weights):
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    se = model.get_layer("block1_conv1_se")
    np.testing.assert_array_equal(se.expand_bias.numpy(), 0.0)  # at its initialiser


@pytest.mark.parametrize("batch_norm", [False, True])
def test_se_after_every_convolution(batch_norm):
    for model_name, convs in CONVS.items():
        model = se_keras.applications.builder(model_name)(
            include_top=False, input_shape=(32, 32, 3), batch_norm=batch_norm
        )
        se_layers = [layer for layer in model.layers if isinstance(layer, SqueezeExcite)]
        assert len(se_layers) == convs
        for layer in se_layers:
            conv = layer.name[: -len("_se")]
            if batch_norm:
                assert _producer(model, layer.name) == f"{conv}_relu"
                assert _producer(model, f"{conv}_relu") == f"{conv}_bn"
                assert _producer(model, f"{conv}_bn") == conv
                assert model.get_layer(conv).activation is keras.activations.linear
            else:  # keras' conv has its ReLU fused
                assert _producer(model, layer.name) == conv
                assert model.get_layer(conv).activation is keras.activations.relu
            assert layer.hidden == layer.channels // 16
    assert _producer(model, "block2_conv1") == "block1_pool"
    assert _producer(model, "block1_pool") == "block1_conv2_se"


def test_paper_numbers_at_224():
    # Paper Table 2: VGG-16 (BN) 15.47 GFLOPs (multiply-adds), SE-VGG-16 15.48.
    plain = se_vgg.SEVGG16(se_ratio=None, batch_norm=True)
    assert abs(count_macs(plain) / 15.47e9 - 1) <= 0.015
    # torchvision's vgg16_bn: 138,365,992 parameters (conv biases kept, BN gamma and beta).
    assert trainable(plain) == 138_365_992
    model = se_vgg.SEVGG16(batch_norm=True)
    assert abs(count_macs(model) / 15.48e9 - 1) <= 0.015
    widths = [64] * 2 + [128] * 2 + [256] * 3 + [512] * 6  # two FCs C -> C/16 -> C, biased
    assert trainable(model) - trainable(plain) == sum(
        2 * c * (c // 16) + c // 16 + c for c in widths
    )


def test_preprocessing_is_keras_vgg_caffe_mode():
    x = np.random.default_rng(1).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = keras.applications.vgg16.preprocess_input(x.copy())
    np.testing.assert_allclose(se_vgg.preprocess_input(x.copy()), expected, atol=1e-4)
    # The tf.data pipeline's normaliser for the family's mode does the same.
    tf_version = data.normalizer(se_vgg.PREPROCESS_MODE)(x.copy())
    np.testing.assert_allclose(np.asarray(tf_version), expected, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch_norm=1), r"`batch_norm`.*Received: batch_norm=1"),
        (
            dict(batch_norm=True, weights="imagenet_base"),
            r"no BatchNorm.*Received: batch_norm=True",
        ),
        (dict(weights="imagenet"), r"use weights='imagenet_base'.*Received: weights='imagenet'"),
        (dict(weights="imagenet_base", classes=10), r"`classes` should be 1000"),
        (dict(include_top=False, input_shape=(16, 16, 3)), r"at least 32x32"),
        (dict(se_ratio=0), r"Received: se_ratio=0"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        se_vgg.SEVGG16(**kwargs)
