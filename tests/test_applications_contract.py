"""The keras.applications contract, for every registered model in both data formats.

Re-states keras' own checks (`keras/src/applications/applications_test.py`): headless output
shapes with 1- and 4-channel variable-size inputs, a 123x123 input, a custom `input_tensor`,
`pooling`, `classifier_activation`, a serialization round trip and the base builder's
signature. The feature width comes from the registry, so a new model is checked as soon as
it is registered.

A build costs about a second on this CPU (a deep model several), so each build carries two
of keras' checks where they are independent (1 channel and max pooling, the input tensor and
4 channels, 123x123 and average pooling), and the classifier is built once for the tests
that use it. Models with more than `HEAVY_PARAMS` recorded parameters run in the exhaustive
tier, except `SLOW_HEAVY`, in the slow tier in channels_last.

TensorFlow's CPU kernels run NCHW convolutions only on some machines (keras' own test skips
running channels_first models on a CPU for that reason): in channels_first the checks build
the model and check its shapes and configuration; in channels_last they also run it, on
small inputs (the registry's minimum size).
"""

import functools
import inspect
import re

import keras
import numpy as np
import pytest

from se_keras import applications
from se_keras.applications import timm_resnet

HEAVY_PARAMS = 30_000_000  # above this recorded parameter count: slow / exhaustive tier
FORMATS = ("channels_last", "channels_first")
CLASSES = 7

RESNET_EXTRAS = ("se_ratio", "se_stages", "se_position", "se_options")
SE_EXTRAS = ("se_ratio", "se_options")
VGG_EXTRAS = ("se_ratio", "batch_norm", "se_options")
# Model -> (the keras.applications builder its signature mirrors, the positional arguments of
# its own architecture inserted into it, its keyword-only extras).
KERAS_BASES = {
    "se_bn_inception": ("InceptionV3", (), SE_EXTRAS),
    "se_inception_resnet_v2": ("InceptionResNetV2", (), SE_EXTRAS),
    "se_inception_v3": ("InceptionV3", (), SE_EXTRAS),
    "se_mobilenet": ("MobileNet", (), SE_EXTRAS),
    "se_mobilenet_v2": ("MobileNetV2", (), SE_EXTRAS),
    "se_resnet18": ("ResNet50", (), RESNET_EXTRAS),
    "se_resnet34": ("ResNet50", (), RESNET_EXTRAS),
    "se_resnet50": ("ResNet50", (), RESNET_EXTRAS),
    "se_resnet101": ("ResNet50", (), RESNET_EXTRAS),
    "se_resnet152": ("ResNet50", (), RESNET_EXTRAS),
    "se_resnext50": ("ResNet50", (), RESNET_EXTRAS),
    "se_resnext101": ("ResNet50", (), RESNET_EXTRAS),
    "se_shufflenet": ("MobileNetV2", ("groups",), SE_EXTRAS),  # ShuffleNet's group count
    "se_shufflenet_v2": ("MobileNetV2", (), SE_EXTRAS),
    "se_vgg16": ("VGG16", (), VGG_EXTRAS),
    "se_vgg19": ("VGG19", (), VGG_EXTRAS),
    "senet154": ("ResNet50", (), RESNET_EXTRAS),
    # timm's family: keras' ResNet50 arguments and the two SE knobs, for each of its models.
    **{entry.name: ("ResNet50", (), SE_EXTRAS) for entry in timm_resnet.MODELS},
}
# Models whose builders refuse a 123x123 input, and the error they document for it.
REFUSES_123 = {
    # SE-BN-Inception's stride-2 modules join a ceil-mode pool and stride-2 convolutions,
    # which agree only for sides n with n mod 32 in 31..6 (`se_inception.check_sides`).
    "se_bn_inception": r"builds only from input sides n with n mod 32 in 31\.\.6",
    # timm's anti-aliased units pool the branch with floor and the shortcut with ceil.
    "timm_seresnextaa101d_32x8d": r"needs an input whose stem output sides",
    "timm_seresnextaa201d_32x8d": r"needs an input whose stem output sides",
}


# The heavy models in the slow tier: those with a head, stem or modules no lighter model has
# (SENet-154's dropout head and stem, Inception-ResNet-v2's modules, SE-VGG's fully connected
# head, timm's anti-aliased units). The other heavy ones differ from a lighter model of their
# family only in depth or width, which the builder's contract does not see: exhaustive tier.
SLOW_HEAVY = ("senet154", "se_inception_resnet_v2", "se_vgg16", "timm_seresnextaa101d_32x8d")


def _cases():
    for name in applications.list_models():
        heavy = applications.entry(name).params > HEAVY_PARAMS
        tiers = (pytest.mark.slow, pytest.mark.exhaustive)
        if name not in SLOW_HEAVY:
            tiers = (pytest.mark.exhaustive,) * 2
        for data_format, tier in zip(FORMATS, tiers):
            marks = [tier] if heavy else []
            yield pytest.param((name, data_format), marks=marks, id=f"{name}-{data_format}")


class Contract:
    """One model in one data format; the classifier that several tests use (and its output on
    `batch()`) is made once."""

    def __init__(self, name, data_format):
        self.name = name
        self.entry = applications.entry(name)
        self.channels_first = data_format == "channels_first"
        self.runs = not self.channels_first  # see the module docstring

    def shape(self, rows, cols, channels):
        return (channels, rows, cols) if self.channels_first else (rows, cols, channels)

    @property
    def channel_axis(self):
        return 1 if self.channels_first else -1

    def build(self, **kwargs):
        return applications.builder(self.name)(weights=None, **kwargs)

    def batch(self, channels=3, side=None, n=2, seed=0):
        side = side or self.entry.min_size
        shape = (n, *self.shape(side, side, channels))
        return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")

    @functools.cached_property
    def classifier(self):
        side = self.entry.min_size
        return self.build(input_shape=self.shape(side, side, 3), classes=CLASSES)

    @functools.cached_property
    def probabilities(self):
        return run(self.classifier, self.batch())


@pytest.fixture(scope="module", params=list(_cases()))
def contract(request):
    name, data_format = request.param
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format(data_format)
    yield Contract(name, data_format)
    keras.config.set_image_data_format(previous)
    keras.backend.clear_session()


def run(model, x):
    # A model built on an `input_tensor` takes the list of its source inputs, as keras' does.
    inputs = [x] if isinstance(model.input, list) else x
    return keras.tree.map_structure(keras.ops.convert_to_numpy, model(inputs, training=False))


def test_every_registered_model_has_a_keras_base():
    assert sorted(KERAS_BASES) == sorted(applications.list_models())
    assert set(REFUSES_123) <= set(applications.list_models())


def _expected_default(parameter, name):
    """keras' default, except `weights` ("imagenet" only where such weights were released)
    and `name` (the registry name where keras names its model, None where keras does)."""
    if parameter.name == "weights":
        return "imagenet" if "imagenet" in applications.tags(name) else None
    if parameter.name == "name" and parameter.default is not None:
        return name
    return parameter.default


@pytest.mark.parametrize("name", applications.list_models())
def test_signature_is_the_keras_base_builders(name):
    base_name, own, extras = KERAS_BASES[name]
    base = inspect.signature(getattr(keras.applications, base_name)).parameters.values()
    ours = list(inspect.signature(applications.builder(name)).parameters.values())
    keyword_only = inspect.Parameter.KEYWORD_ONLY
    positional = [p for p in ours if p.kind != keyword_only and p.name not in own]
    assert [(p.name, p.kind, p.default) for p in positional] == [
        (p.name, p.kind, _expected_default(p, name)) for p in base
    ]
    assert [p.name for p in ours if p.name in own] == list(own)
    rest = ours[len(positional) + len(own) :]
    assert [(p.name, p.kind) for p in rest] == [(extra, keyword_only) for extra in extras]
    assert next(p.default for p in rest if p.name == "se_ratio") == 16


def test_headless_1_channel_variable_size_with_max_pooling(contract):
    model = contract.build(
        include_top=False, input_shape=contract.shape(None, None, 1), pooling="max"
    )
    assert tuple(model.input.shape[1:]) == contract.shape(None, None, 1)
    features = contract.shape(None, None, contract.entry.features)
    assert list(model.layers[-1].input.shape) == [None, *features]
    # Twice the minimum side: features of more than one pixel, for the max to pick from.
    check_pooling(contract, model, "max", contract.batch(1, side=2 * contract.entry.min_size))


def test_headless_input_tensor_4_channels_variable_size(contract):
    # keras' check: a layer's output as `input_tensor` (here of variable size, 4 channels).
    source = keras.Input(shape=contract.shape(None, None, 4), name="custom_input")
    tensor = keras.layers.Conv2D(4, (2, 2), padding="valid", strides=(2, 2))(source)
    model = contract.build(include_top=False, input_tensor=tensor)
    assert model.inputs == [source]
    assert list(model.output.shape) == [None, *contract.shape(None, None, contract.entry.features)]


def test_headless_at_123x123_with_avg_pooling(contract):
    shape = contract.shape(123, 123, 3)
    if contract.name in REFUSES_123:
        message = REFUSES_123[contract.name] + rf".*Received: input_shape={re.escape(str(shape))}"
        with pytest.raises(ValueError, match=message):
            contract.build(include_top=False, input_shape=shape, pooling="avg")
        return
    model = contract.build(include_top=False, input_shape=shape, pooling="avg")
    assert tuple(model.input.shape[1:]) == shape
    x = np.random.default_rng(0).uniform(-1, 1, (2, *shape)).astype("float32")
    check_pooling(contract, model, "avg", x)


POOLING_LAYERS = {
    "max": (keras.layers.GlobalMaxPooling2D, np.max),
    "avg": (keras.layers.GlobalAveragePooling2D, np.mean),
}


def check_pooling(contract, model, pooling, x):
    layer, reduce = POOLING_LAYERS[pooling]
    assert list(model.output.shape) == [None, contract.entry.features]
    assert isinstance(model.layers[-1], layer)
    features = model.layers[-1].input
    assert features.shape[contract.channel_axis] == contract.entry.features
    if contract.runs:  # the output is the features pooled over space
        both = keras.Model(model.input, [features, model.output])
        features, pooled = run(both, x)
        scale = np.abs(features).max()  # far below 1 in some random networks (SE-MobileNet)
        assert np.isfinite(features).all() and scale > 0
        np.testing.assert_allclose(
            pooled, reduce(features, axis=(1, 2)), rtol=1e-5, atol=1e-6 * scale
        )


def test_classifier_activation(contract):
    probabilities = contract.classifier
    logits = contract.build(
        input_shape=probabilities.input.shape[1:], classes=CLASSES, classifier_activation=None
    )
    assert probabilities.layers[-1].activation.__name__ == "softmax"
    assert logits.layers[-1].activation.__name__ == "linear"
    assert probabilities.output.shape == logits.output.shape == (None, CLASSES)
    if contract.runs:
        logits.set_weights(probabilities.get_weights())
        p, z = contract.probabilities, run(logits, contract.batch())
        np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-5)
        assert np.abs(z.sum(axis=-1) - 1.0).min() > 1e-3  # logits, not probabilities
        np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.softmax(z)), p, atol=1e-6)


def test_serialization_round_trip(contract):
    model = contract.classifier
    # Deserialised by registered class names alone, as a `.keras` file is: no custom_objects.
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert restored.get_config() == model.get_config()
    assert [w.shape for w in restored.weights] == [w.shape for w in model.weights]
    if contract.runs:
        restored.set_weights(model.get_weights())
        np.testing.assert_array_equal(run(restored, contract.batch()), contract.probabilities)
