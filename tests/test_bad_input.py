"""Bad arguments to every family's builder and to the layer: a ValueError that names the
argument and the value received, raised before anything is built or downloaded."""

import math

import keras
import pytest

import se_keras

# One model of every family (the checks are shared, the families call them differently).
FAMILY_MODELS = (
    "se_resnet18",
    "se_inception_v3",
    "se_bn_inception",
    "se_mobilenet",
    "se_shufflenet_v2",
    "se_vgg16",
)

BAD_ARGUMENTS = [
    (dict(input_shape=(96, 96, 0)), r"Received: input_shape=\(96, 96, 0\)"),
    (dict(input_shape=96), r"Received: input_shape=96"),
    (dict(input_shape=("a", 96, 3)), r"Received: input_shape=\('a', 96, 3\)"),
    (dict(input_shape=(96, 96)), r"Received: input_shape=\(96, 96\)"),
    (dict(include_top="no"), r"Received: include_top='no'"),
    (dict(classes=0), r"Received: classes=0"),
    (dict(classes=2.5), r"Received: classes=2.5"),
    (dict(se_ratio=math.inf), r"Received: se_ratio=inf"),
    (dict(se_ratio=math.nan), r"Received: se_ratio=nan"),
    (dict(se_ratio=0), r"Received: se_ratio=0"),
    (dict(se_options={"use_bias": "no"}), r"Received: use_bias='no'"),
    (dict(se_options={"data_format": "channels_first"}), r"Received: se_options="),
    (dict(pooling="mean", include_top=False), r"Received: pooling='mean'"),
    (dict(weights="imagenet22k"), r"Received: weights='imagenet22k'"),
    (
        dict(classifier_activation="nope", input_shape=None),
        r"Received: classifier_activation='nope'",
    ),
    (dict(classifier_activation=5, input_shape=None), r"Received: classifier_activation=5"),
]


@pytest.mark.parametrize("name", FAMILY_MODELS)
@pytest.mark.parametrize("kwargs, message", BAD_ARGUMENTS)
def test_bad_builder_arguments_are_named(name, kwargs, message):
    arguments = {"weights": None, "input_shape": (96, 96, 3), **kwargs}
    with pytest.raises(ValueError, match=message):
        se_keras.applications.get_model(name, **arguments)


@pytest.mark.parametrize("name", FAMILY_MODELS)
def test_an_input_tensor_below_the_minimum_size_is_refused(name):
    with pytest.raises(ValueError, match=r"at least \d+x\d+. Received: input_\w+.*\(16, 16, 3\)"):
        se_keras.applications.get_model(
            name, weights=None, include_top=False, input_tensor=keras.Input((16, 16, 3))
        )


def test_pretrained_weights_need_softmax_or_logits():
    # As keras.applications' validate_activation, refused before any download.
    with pytest.raises(ValueError, match=r"'softmax' or None.*classifier_activation='relu'"):
        se_keras.applications.SEResNet50(classifier_activation="relu")


def test_pretrained_weights_need_a_three_channel_input_tensor():
    # Refused before any download: no server is needed to see it.
    with pytest.raises(ValueError, match=r"3 channels. Received: input_tensor.shape=\(224, 224, 1"):
        se_keras.applications.SEResNet50(input_tensor=keras.Input((224, 224, 1)))


@pytest.mark.parametrize("side", [123, 200, 231])
def test_bn_inception_refuses_the_sides_it_cannot_build_naming_those_it_can(side):
    with pytest.raises(ValueError, match=rf"n mod 32 in 31..6.*input_shape=\({side}, {side}, 3\)"):
        se_keras.applications.SEBNInception(
            weights=None, include_top=False, input_shape=(side, side, 3)
        )


@pytest.mark.parametrize("side", [191, 230])
def test_bn_inception_builds_at_the_sides_it_names(side):
    model = se_keras.applications.SEBNInception(
        weights=None, include_top=False, input_shape=(side, side, 3)
    )
    assert model.output.shape[1:3] == (side // 32 + (side % 32 == 31),) * 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(ratio=math.nan), r"Received: ratio=nan"),
        (dict(ratio=math.inf), r"Received: ratio=inf"),
        (dict(use_bias="no"), r"Received: use_bias='no'"),
        (dict(width=0), r"Received: width=0"),
    ],
)
def test_bad_layer_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        se_keras.layers.SqueezeExcite(**kwargs)


def test_the_layer_refuses_zero_channels():
    with pytest.raises(
        ValueError, match=r"known channel dimension of at least 1. Received: input_shape="
    ):
        se_keras.layers.SqueezeExcite()(keras.Input((4, 4, 0)))


def test_another_models_weights_file_is_one_error_without_warnings(tmp_path, recwarn):
    path = str(tmp_path / "se_resnet18.weights.h5")
    se_keras.applications.SEResNet18(
        weights=None, input_shape=(32, 32, 3), classes=10
    ).save_weights(path)
    recwarn.clear()
    with pytest.raises(ValueError, match=r"does not fit se_resnet34: .*Received: weights="):
        se_keras.applications.SEResNet34(weights=path, input_shape=(32, 32, 3), classes=10)
    # Keras' "Skipping nested container ..." warning, once per layer, does not reach the user.
    assert [w for w in recwarn if "Skipping nested container" in str(w.message)] == []
