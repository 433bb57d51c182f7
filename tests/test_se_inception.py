"""The SE-Inception family against keras.applications, the released prototxt and the paper."""

import re

import keras
import numpy as np
import pytest

import se_keras
from se_keras.applications import base_weights, imagenet_utils, se_inception
from se_keras.layers import SqueezeExcite
from se_keras.utils.flops import count_macs

KERAS_BASES = {
    "SEInceptionV3": keras.applications.InceptionV3,
    "SEInceptionResNetV2": keras.applications.InceptionResNetV2,
}
SMALL = dict(include_top=False, input_shape=(75, 75, 3), pooling="avg")
HEADLESS = dict(include_top=False, input_shape=(107, 107, 3))  # features 2x2 (InceptionV3)


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def se_blocks(model):
    return [layer for layer in model.layers if isinstance(layer, SqueezeExcite)]


def randomize_statistics(model, seed=0):
    """Random BatchNorm moving statistics (and offsets), so that a wrong BN pairing shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0.0, 0.5, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape))
            layer.beta.assign(rng.normal(0.0, 0.5, layer.beta.shape))
    return model


def neutralize(model):
    """A gate of exactly 1 (sigmoid(50) == 1.0 in float32) makes every SE block the identity."""
    for layer in se_blocks(model):
        layer.expand_kernel.assign(np.zeros(layer.expand_kernel.shape))
        layer.expand_bias.assign(np.full(layer.expand_bias.shape, 50.0))
    return model


def images(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def max_diff(a, b, x):
    ya, yb = a.predict(x, verbose=0), b.predict(x, verbose=0)
    assert ya.shape == yb.shape
    return float(np.abs(ya - yb).max())


def producers(model, name):
    """Names of the layers whose outputs feed layer `name`."""
    inputs = keras.tree.flatten(model.get_layer(name).input)
    return [layer.name for layer in model.layers if any(layer.output is t for t in inputs)]


def consumers(model, name):
    """Names of the layers that read layer `name`'s output."""
    output = model.get_layer(name).output
    return [
        layer.name
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
        and any(t is output for t in keras.tree.flatten(layer.input))
    ]


# --- keras.applications parity --------------------------------------------------------------


def check_plain_equals_keras(builder_name, **kwargs):
    keras.backend.clear_session()  # keras' automatic layer names as in a fresh session
    base = randomize_statistics(KERAS_BASES[builder_name](weights=None, **kwargs))
    ours = getattr(se_inception, builder_name)(se_ratio=None, **kwargs)
    assert ours.count_params() == base.count_params()
    assert trainable(ours) == trainable(base)
    assert not se_blocks(ours)
    # Layer for layer: the same names (keras' CustomScaleLayer is our `_scale` + `_add`;
    # keras leaves the headless pooling unnamed, the zoo's head calls it `avg_pool`).
    skip = (keras.layers.InputLayer, keras.layers.GlobalAveragePooling2D)

    def names(model):
        return [
            layer.name
            for layer in model.layers
            if not isinstance(layer, skip)
            and not re.fullmatch(r"custom_scale_layer(_\d+)?|.*_(scale|add)", layer.name)
        ]

    assert names(ours) == names(base)
    base_weights.copy_weights(base, ours, "structure")
    size = kwargs.get("input_shape", (299, 299, 3))
    return max_diff(ours, base, images((2, *size)))


def test_plain_inception_v3_is_keras_inception_v3():
    # The whole network with its classifier: 23,851,784 parameters.
    assert check_plain_equals_keras("SEInceptionV3", classifier_activation=None) <= 1e-5


@pytest.mark.slow
def test_plain_inception_resnet_v2_is_keras_inception_resnet_v2():
    # 55,873,736 parameters; at 99x99 every block35/17/8 runs on a map larger than 1x1.
    kwargs = dict(include_top=False, input_shape=(99, 99, 3), pooling="avg")
    assert check_plain_equals_keras("SEInceptionResNetV2", **kwargs) <= 1e-5
    assert se_inception.SEInceptionResNetV2(se_ratio=None).count_params() == (
        keras.applications.InceptionResNetV2(weights=None).count_params()
    )


def test_imagenet_base_copies_the_keras_network(monkeypatch):
    real, calls = keras.applications.InceptionV3, []

    def offline_inception_v3(**kwargs):  # keras' ImageNet file cannot be downloaded here
        calls.append(kwargs)
        calls.append(randomize_statistics(real(**{**kwargs, "weights": None})))
        return calls[-1]

    monkeypatch.setattr(keras.applications, "InceptionV3", offline_inception_v3)
    model = se_inception.SEInceptionV3(weights="imagenet_base", **HEADLESS)
    kwargs, base = calls
    assert kwargs == dict(
        weights="imagenet", include_top=False, input_shape=(107, 107, 3), classes=1000
    )
    assert len(se_blocks(model)) == 11
    se_weights = {id(w) for layer in se_blocks(model) for w in layer.weights}
    ours = [w for w in model.weights if id(w) not in se_weights]
    assert len(ours) == len(base.weights)
    for a, b in zip(ours, base.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert max_diff(neutralize(model), base, images((2, 107, 107, 3))) <= 1e-5


@pytest.mark.slow
def test_imagenet_base_copies_the_keras_inception_resnet_v2(monkeypatch):
    real = keras.applications.InceptionResNetV2
    bases = []

    def offline(**kwargs):
        bases.append(randomize_statistics(real(**{**kwargs, "weights": None})))
        return bases[-1]

    monkeypatch.setattr(keras.applications, "InceptionResNetV2", offline)
    model = se_inception.SEInceptionResNetV2(weights="imagenet_base", **HEADLESS)
    assert max_diff(neutralize(model), bases[0], images((2, 107, 107, 3))) <= 1e-5


# --- where SE sits --------------------------------------------------------------------------


def test_inception_v3_has_se_on_every_module_output():
    model = se_inception.SEInceptionV3(**SMALL)
    names = [f"mixed{i}" for i in range(11)]
    assert [layer.name for layer in se_blocks(model)] == [f"{n}_se" for n in names]
    for name in names:
        assert isinstance(model.get_layer(name), keras.layers.Concatenate)
        assert producers(model, f"{name}_se") == [name]
        assert consumers(model, name) == [f"{name}_se"]  # nothing bypasses SE
    assert consumers(model, "mixed10_se") == ["avg_pool"]
    # The next module's branches all read the SE output: 1x1, 5x5, 3x3dbl and pool branches.
    assert len(consumers(model, "mixed0_se")) == 4


def test_inception_resnet_v2_has_se_on_every_residual_branch():
    base = keras.applications.InceptionResNetV2(weights=None, **SMALL)
    blocks = [
        m.group(1)
        for layer in base.layers
        if (m := re.fullmatch(r"(block\d+_\d+)_conv", layer.name))
    ]
    assert len(blocks) == 10 + 20 + 10
    model = se_inception.SEInceptionResNetV2(**SMALL)
    assert [layer.name for layer in se_blocks(model)] == [f"{b}_se" for b in blocks]
    for block in blocks:
        # mixed -> 1x1 up-projection -> SE -> scale -> add(shortcut, branch)
        assert producers(model, f"{block}_se") == [f"{block}_conv"]
        assert consumers(model, f"{block}_conv") == [f"{block}_se"]
        assert consumers(model, f"{block}_se") == [f"{block}_scale"]
        add_inputs = producers(model, f"{block}_add")
        assert f"{block}_scale" in add_inputs and len(add_inputs) == 2
    scales = {"block35_1": 0.17, "block17_20": 0.1, "block8_9": 0.2, "block8_10": 1.0}
    assert {b: model.get_layer(f"{b}_scale").scale for b in scales} == scales
    assert consumers(model, "block8_10_add") == ["conv_7b"]  # the last block has no ReLU


def se_gradients(model):
    """Gradients of a training-mode cross-entropy loss with respect to every SE weight."""
    import tensorflow as tf  # conftest.py runs the suite on the TensorFlow backend

    variables = [w for layer in se_blocks(model) for w in layer.trainable_weights]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(np.array([0, 2]), model(images((2, 75, 75, 3)), training=True))
    return [None if g is None else g.numpy() for g in tape.gradient(loss, variables)]


@pytest.mark.parametrize("builder, blocks", [("SEInceptionV3", 11), ("SEInceptionResNetV2", 40)])
def test_every_se_weight_receives_gradient(builder, blocks):
    model = getattr(se_inception, builder)(
        input_shape=(75, 75, 3), classes=3, classifier_activation=None
    )
    grads = se_gradients(model)
    assert len(grads) == blocks * 4  # two kernels and two biases per block
    assert all(g is not None and np.abs(g).max() > 0 for g in grads)


# --- SE-BN-Inception: the released prototxt and the paper -------------------------------------


def test_bn_inception_matches_the_released_model_and_the_paper():
    model = se_inception.SEBNInception()
    # models/SE-BN-Inception.prototxt (hujie-frank/SENet): convolutions without bias,
    # BatchNorm + Scale (gamma, beta), SE 1x1 convolutions with bias, a 1000-way classifier.
    assert trainable(model) == 11_931_622
    modules = ["3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
    assert [layer.name for layer in se_blocks(model)] == [f"inception_{m}_se" for m in modules]
    widths = [(layer.channels, layer.hidden) for layer in se_blocks(model)]
    assert widths == [
        (256, 16),
        (320, 20),
        (576, 36),
        (576, 36),
        (576, 36),
        (608, 38),
        (608, 38),
        (1056, 66),
        (1024, 64),
        (1024, 64),
    ]  # the prototxt's
    for m in modules:
        assert producers(model, f"inception_{m}_se") == [f"inception_{m}_concat"]
        assert consumers(model, f"inception_{m}_concat") == [f"inception_{m}_se"]
    # Caffe's ceil-mode pools and symmetric stride-2 padding: 112 -> 56 -> 28 -> 14 -> 7.
    shapes = {
        n: model.get_layer(n).output.shape[1:3]
        for n in (
            "conv1_7x7_s2",
            "pool1_3x3_s2",
            "pool2_3x3_s2",
            "inception_3c_concat",
            "inception_4e_concat",
        )
    }
    assert shapes == {
        "conv1_7x7_s2": (112, 112),
        "pool1_3x3_s2": (56, 56),
        "pool2_3x3_s2": (28, 28),
        "inception_3c_concat": (14, 14),
        "inception_4e_concat": (7, 7),
    }
    # Paper Table 2: BN-Inception 2.03 GFLOPs (multiply-adds), SE-BN-Inception 2.04.
    plain = se_inception.SEBNInception(se_ratio=None)
    assert abs(count_macs(plain) / 2.03e9 - 1) <= 0.015
    assert abs(count_macs(model) / 2.04e9 - 1) <= 0.015
    se_parameters = sum(int(np.prod(w.shape)) for b in se_blocks(model) for w in b.weights)
    assert trainable(plain) == 11_931_622 - se_parameters == 11_285_224


def test_bn_inception_layers_carry_prototxt_names():
    model = se_inception.SEBNInception(include_top=False, input_shape=(64, 64, 3))
    names = [l.name for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    prefix = re.compile(
        r"(conv1_7x7_s2|pool1_3x3_s2|conv2_3x3(_reduce)?|pool2_3x3_s2|inception_[345][a-e]_)"
    )
    assert all(prefix.match(n) for n in names), [n for n in names if not prefix.match(n)]
    for name in (
        "inception_3a_double3x3a",
        "inception_3a_double3x3a_bn",
        "inception_3a_double3x3a_relu",
        "inception_3c_3x3_pad",
        "inception_4e_pool_3x3_s2",
        "inception_5b_pool_proj",
    ):
        model.get_layer(name)
    assert isinstance(model.get_layer("inception_5b_pool"), keras.layers.MaxPooling2D)
    bn = model.get_layer("inception_3a_1x1_bn")
    assert bn.epsilon == 1e-5 and bn.gamma is not None  # Caffe's BatchNorm + Scale


def test_bn_inception_average_pool_counts_its_padding_like_caffe():
    model = se_inception.SEBNInception(include_top=False, input_shape=(64, 64, 3), se_ratio=None)
    probe = keras.Model(
        model.get_layer("inception_3a_pool_pad").input, model.get_layer("inception_3a_pool").output
    )
    out = probe.predict(np.ones((1, 8, 8, 192), "float32"), verbose=0)
    # Caffe divides by the full 3x3 window at the borders: a corner sees 4 ones of 9.
    np.testing.assert_allclose(out[0, 0, 0, 0], 4 / 9, rtol=1e-6)
    np.testing.assert_allclose(out[0, 0, 1, 0], 6 / 9, rtol=1e-6)
    np.testing.assert_allclose(out[0, 3, 3, 0], 1.0, rtol=1e-6)


def test_bn_inception_minimum_input_and_weights_file(tmp_path):
    model = se_inception.SEBNInception(include_top=False, input_shape=(32, 32, 3), pooling="max")
    assert model.output.shape == (None, 1024)
    path = tmp_path / "se_bn_inception.weights.h5"
    model.save_weights(path)
    loaded = se_inception.SEBNInception(
        include_top=False, input_shape=(32, 32, 3), pooling="max", weights=str(path)
    )
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_bn_inception_keras_file_round_trip(tmp_path):
    model = se_inception.SEBNInception(include_top=False, input_shape=(64, 64, 3), pooling="avg")
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    x = images((2, 64, 64, 3))
    assert max_diff(restored, model, x) <= 1e-6


# --- the keras.applications contract -------------------------------------------------------


def test_registry_entries_and_names():
    assert [entry.name for entry in se_inception.MODELS] == [
        "se_inception_v3",
        "se_inception_resnet_v2",
        "se_bn_inception",
    ]
    model = se_keras.applications.get_model(
        "se_bn_inception", include_top=False, input_shape=(32, 32, 3)
    )
    assert model.name == "se_bn_inception"


def test_se_options_reach_every_block():
    model = se_inception.SEBNInception(
        include_top=False,
        input_shape=(32, 32, 3),
        se_ratio=8,
        se_options={"pooling": "max", "gate": "tanh", "use_bias": False},
    )
    blocks = se_blocks(model)
    assert len(blocks) == 10
    assert all(b.pooling == "max" and b.gate == "tanh" and not b.use_bias for b in blocks)
    assert blocks[0].hidden == 256 // 8


_BAD = [
    (dict(weights="imagenett"), r"`weights`.*Received: weights='imagenett'"),
    (dict(weights="missing/file.weights.h5"), r"Received: weights='missing/file.weights.h5'"),
    (
        dict(weights="imagenet"),
        r"No ImageNet weights were released for se_inception_v3; "
        r"use weights='imagenet_base'.*Received: weights='imagenet'",
    ),
    (dict(weights="imagenet_base", classes=10), r"`classes` should be 1000.*Received: classes=10"),
    (
        dict(weights="imagenet_base", input_shape=(224, 224, 3)),
        r"`input_shape` should be \(299, 299, 3\)",
    ),
    (
        dict(input_shape=(74, 80, 3), include_top=False),
        r"at least 75x75.*input_shape=\(74, 80, 3\)",
    ),
    (dict(input_shape=(80, 80)), r"`input_shape`.*Received: input_shape=\(80, 80\)"),
    (
        dict(input_shape=(80, None, 3)),
        r"static `input_shape`.*Received: input_shape=\(80, None, 3\)",
    ),
    (dict(include_top=False, pooling="mean"), r"`pooling`.*Received: pooling='mean'"),
    (dict(pooling="mean"), r"`pooling`.*Received: pooling='mean'"),
    (dict(se_ratio=0), r"`se_ratio`.*Received: se_ratio=0"),
    (dict(se_ratio="16"), r"`se_ratio`.*Received: se_ratio='16'"),
    (dict(se_options={"ratio": 8}), r"`se_options`.*Received: se_options=\{'ratio': 8\}"),
    (dict(se_options=["avg"]), r"`se_options`.*Received: se_options=\['avg'\]"),
    (
        dict(se_options={"gate": "softmax"}, include_top=False, input_shape=(75, 75, 3)),
        r"`gate`.*Received: gate='softmax'",
    ),
]


@pytest.mark.parametrize("builder", ["SEInceptionV3", "SEInceptionResNetV2"])
@pytest.mark.parametrize("kwargs, message", _BAD)
def test_bad_arguments_name_argument_and_value(builder, kwargs, message):
    model_name = dict(SEInceptionV3="se_inception_v3", SEInceptionResNetV2="se_inception_resnet_v2")
    message = message.replace("se_inception_v3", model_name[builder])
    with pytest.raises(ValueError, match=message):
        getattr(se_inception, builder)(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(weights="imagenet"),
            r"No ImageNet weights were released for se_bn_inception; "
            r"use weights=None.*Received: weights='imagenet'",
        ),
        (dict(weights="imagenet_base"), r"`weights`.*Received: weights='imagenet_base'"),
        (
            dict(input_shape=(31, 64, 3), include_top=False),
            r"at least 32x32.*input_shape=\(31, 64, 3\)",
        ),
        (dict(pooling="sum", include_top=False), r"`pooling`.*Received: pooling='sum'"),
        (dict(se_ratio=-2), r"`se_ratio`.*Received: se_ratio=-2"),
    ],
)
def test_bn_inception_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        se_inception.SEBNInception(**kwargs)


def test_preprocess_input_scales_to_minus_one_one():
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(se_inception.preprocess_input(x.copy()), x / 127.5 - 1, atol=1e-6)
    preds = np.zeros((1, 1000), "float32")
    preds[0, 207] = 1.0
    ((wnid, label, score),) = se_inception.decode_predictions(preds, top=1)[0]
    assert (wnid, label, score) == (*imagenet_utils.class_index()[207], 1.0)
