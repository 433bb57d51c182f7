"""The mobile families (SE-MobileNet v1/v2, SE-ShuffleNet v1/v2) and ShuffleNet's channel
layers, against keras.applications, the papers' tables, NumPy and TensorFlow Lite."""

import re

import keras
import numpy as np
import pytest

from se_keras import applications
from se_keras.applications import se_mobilenet, se_shufflenet
from se_keras.applications.base_weights import copy_weights
from se_keras.benchmark.realistic import randomize_batch_norm
from se_keras.layers import ChannelShuffle, ChannelSplit, SqueezeExcite
from se_keras.utils.flops import count_macs
from tests.helpers import builtin_operators

BUILDERS = {
    entry.name: applications.builder(entry.name)
    for entry in se_mobilenet.MODELS + se_shufflenet.MODELS
}
KERAS_BASES = {"se_mobilenet": "MobileNet", "se_mobilenet_v2": "MobileNetV2"}


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def images(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


def shuffle_reference(x, groups, axis):
    """Channel c = g * (C / groups) + k goes to position k * groups + g."""
    channels = x.shape[axis]
    order = np.arange(channels).reshape(groups, channels // groups).T.reshape(-1)
    return np.take(x, order, axis=axis)


# --- ChannelShuffle / ChannelSplit -----------------------------------------------------


@pytest.mark.parametrize(
    "groups, data_format", [(2, "channels_last"), (3, "channels_last"), (4, "channels_first")]
)
def test_channel_shuffle_matches_numpy(groups, data_format):
    axis = -1 if data_format == "channels_last" else 1
    x = images((2, 5, 3, 12) if axis == -1 else (2, 12, 5, 3))
    out = keras.ops.convert_to_numpy(ChannelShuffle(groups, data_format=data_format)(x))
    np.testing.assert_array_equal(out, shuffle_reference(x, groups, axis))


def test_channel_shuffle_by_hand():
    # Two groups [0 1 2 | 3 4 5] interleave; the reference agrees.
    x = np.arange(6, dtype="float32").reshape(1, 1, 1, 6)
    out = keras.ops.convert_to_numpy(ChannelShuffle(2)(x))
    assert out.ravel().tolist() == [0, 3, 1, 4, 2, 5]
    assert shuffle_reference(x, 2, -1).ravel().tolist() == [0, 3, 1, 4, 2, 5]


def test_channel_shuffle_with_unknown_spatial_size_in_a_compiled_model():
    inputs = keras.Input((None, None, 6))
    model = keras.Model(inputs, ChannelShuffle(3, name="shuffle")(inputs))
    x = images((2, 7, 5, 6))
    np.testing.assert_array_equal(model.predict(x, verbose=0), shuffle_reference(x, 3, -1))


def test_channel_split_halves():
    x = images((2, 4, 4, 10))
    left, right = ChannelSplit(2)(x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(left), x[..., :5])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(right), x[..., 5:])


def test_channel_layers_config_and_keras_file(tmp_path):
    inputs = keras.Input((4, 4, 12))
    a, b = ChannelSplit(2, name="split")(inputs)
    outputs = ChannelShuffle(3, name="shuffle")(keras.layers.Concatenate()([b, a]))
    model = keras.Model(inputs, outputs)
    layer = model.get_layer("shuffle")
    assert ChannelShuffle.from_config(layer.get_config()).get_config() == layer.get_config()
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")  # registered: no custom_objects
    x = images((2, 4, 4, 12))
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(
    "layer, message",
    [
        (
            lambda: ChannelShuffle(5)(keras.Input((4, 4, 12))),
            r"groups=5.*input_shape=\(None, 4, 4, 12\)",
        ),
        (lambda: ChannelShuffle(0), r"`groups`.*Received: groups=0"),
        (
            lambda: ChannelSplit(2, data_format="nhwc"),
            r"`data_format`.*Received: data_format='nhwc'",
        ),
    ],
)
def test_channel_layers_reject_bad_arguments(layer, message):
    with pytest.raises(ValueError, match=message):
        layer()


# --- MobileNets against keras.applications ---------------------------------------------


@pytest.mark.parametrize("model_name", list(KERAS_BASES))
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_plain_mobilenet_equals_keras_applications(model_name, alpha):
    base = getattr(keras.applications, KERAS_BASES[model_name])(
        input_shape=(128, 128, 3), alpha=alpha, weights=None, classifier_activation=None
    )
    ours = BUILDERS[model_name](
        input_shape=(128, 128, 3), alpha=alpha, se_ratio=None, classifier_activation=None
    )
    assert ours.count_params() == base.count_params()
    assert trainable(ours) == trainable(base)
    randomize_batch_norm(base)
    assert copy_weights(base, ours, "name") == len([l for l in base.layers if l.weights])
    x = images((2, 128, 128, 3))
    expected = base.predict(x, verbose=0)
    assert expected.std() > 0.05  # a comparison of near-zero outputs would prove nothing
    assert np.abs(ours.predict(x, verbose=0) - expected).max() <= 1e-5


@pytest.mark.parametrize("model_name", list(KERAS_BASES))
def test_imagenet_base_copies_keras_weights_by_name(model_name, monkeypatch):
    """weights="imagenet_base" builds keras' network with weights="imagenet" (replaced here
    by random weights: no downloads) and copies every layer of it by name."""
    original = getattr(keras.applications, KERAS_BASES[model_name])
    calls, made = [], []

    def fake_base(**kwargs):
        calls.append(kwargs)
        made.append(original(**{**kwargs, "weights": None}))
        randomize_batch_norm(made[-1], seed=1)
        return made[-1]

    monkeypatch.setattr(keras.applications, KERAS_BASES[model_name], fake_base)
    model = BUILDERS[model_name](
        input_shape=(160, 160, 3), alpha=0.5, include_top=False, weights="imagenet_base"
    )
    assert calls == [
        dict(input_shape=(160, 160, 3), alpha=0.5, include_top=False, weights="imagenet")
    ]
    (base,) = made
    for layer in (layer for layer in base.layers if layer.weights):
        for ours, theirs in zip(model.get_layer(layer.name).weights, layer.weights):
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_imagenet_base_loads_through_the_builder(monkeypatch):
    base = keras.applications.MobileNet(
        input_shape=(128, 128, 3), alpha=0.25, weights=None, classifier_activation=None
    )
    randomize_batch_norm(base)
    monkeypatch.setattr(keras.applications, "MobileNet", lambda **kwargs: base)
    plain = se_mobilenet.SEMobileNet(
        input_shape=(128, 128, 3),
        alpha=0.25,
        weights="imagenet_base",
        se_ratio=None,
        classifier_activation=None,
    )
    x = images((2, 128, 128, 3))
    assert np.abs(plain.predict(x, verbose=0) - base.predict(x, verbose=0)).max() <= 1e-5


# --- The papers' numbers ---------------------------------------------------------------


def test_se_mobilenet_matches_the_paper():
    # SE paper, mobile table: MobileNet 1.0-224 569 MFLOPs (multiply-adds); SE version 4.7M
    # parameters (4.72M with SE on the pointwise outputs: PAPER.md).
    assert abs(trainable(se_mobilenet.SEMobileNet()) / 4.72e6 - 1) <= 0.01
    assert abs(count_macs(se_mobilenet.SEMobileNet(se_ratio=None)) / 569e6 - 1) <= 0.015


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
def test_shufflenet_1x_costs_about_140_mflops(groups):
    # ShuffleNet paper, Table 1/2: every 1x network has about 140 MFLOPs (multiply-adds).
    macs = count_macs(se_shufflenet.SEShuffleNet(groups=groups, se_ratio=None))
    assert 125e6 <= macs <= 150e6


def test_se_shufflenet_matches_the_paper():
    # SE paper, mobile table: SE-ShuffleNet 1x (g=3) 2.4M parameters, ShuffleNet 140 MFLOPs.
    assert 2.3e6 <= trainable(se_shufflenet.SEShuffleNet()) <= 2.6e6
    assert 125e6 <= count_macs(se_shufflenet.SEShuffleNet(se_ratio=None)) <= 150e6


@pytest.mark.parametrize(
    "alpha, mflops, millions", [(0.5, 41, 1.4), (1.0, 146, 2.3), (1.5, 299, 3.5), (2.0, 591, 7.4)]
)
def test_shufflenet_v2_matches_its_paper(alpha, mflops, millions):
    # ShuffleNet V2 paper, Table 5 (FLOPs are multiply-adds; parameters to 0.1M).
    model = se_shufflenet.SEShuffleNetV2(alpha=alpha, se_ratio=None)
    assert abs(count_macs(model) / (mflops * 1e6) - 1) <= 0.015
    assert abs(trainable(model) / 1e6 - millions) <= 0.05


@pytest.mark.parametrize(
    "groups, widths",
    [
        (1, (24, 144, 288, 576)),
        (2, (24, 200, 400, 800)),
        (3, (24, 240, 480, 960)),
        (4, (24, 272, 544, 1088)),
        (8, (24, 384, 768, 1536)),
    ],
)
def test_shufflenet_widths_are_the_papers(groups, widths):
    model = se_shufflenet.SEShuffleNet(groups=groups, include_top=False, input_shape=(64, 64, 3))
    outputs = [
        model.get_layer(name).output.shape[-1]
        for name in ("conv1_relu", "stage2_block4_out", "stage3_block8_out", "stage4_block4_out")
    ]
    assert tuple(outputs) == widths
    assert model.get_layer("stage2_block1_1_conv").groups == 1  # not grouped: 24 inputs
    assert model.get_layer("stage2_block2_1_conv").groups == groups
    assert model.get_layer("stage2_block1_3_conv").groups == groups


def test_shufflenet_scaled_widths_divide_by_groups():
    # 0.5x with g=8 scales to 192/384/768 (multiples of 32) and a 12 -> 16 channel stem.
    assert se_shufflenet.v1_widths(0.5, 8) == (16, 192, 384, 768)
    assert se_shufflenet.v1_widths(0.5, 3) == (12, 120, 240, 480)
    for alpha in (0.25, 0.3, 0.5, 1.5, 2.0):
        for groups in (1, 2, 3, 4, 8):
            stem, *stages = se_shufflenet.v1_widths(alpha, groups)
            assert stem % groups == 0 and all(w % (4 * groups) == 0 for w in stages)


# --- Where SE sits ---------------------------------------------------------------------


def _producer(model, layer_name):
    tensor = model.get_layer(layer_name).input
    return next(layer.name for layer in model.layers if layer.output is tensor)


def _se_layers(model):
    return [layer for layer in model.layers if isinstance(layer, SqueezeExcite)]


def test_se_placement():
    v1 = se_mobilenet.SEMobileNet(input_shape=(64, 64, 3), include_top=False)
    assert [l.name for l in _se_layers(v1)] == [f"conv_pw_{i}_se" for i in range(1, 14)]
    assert all(_producer(v1, f"conv_pw_{i}_se") == f"conv_pw_{i}_relu" for i in range(1, 14))
    assert _producer(v1, "conv_dw_2") == "conv_pad_2"  # block 1's SE feeds block 2's padding
    assert _producer(v1, "conv_pad_2") == "conv_pw_1_se"

    v2 = se_mobilenet.SEMobileNetV2(input_shape=(64, 64, 3), include_top=False)
    assert len(_se_layers(v2)) == 17
    assert _producer(v2, "block_1_se") == "block_1_depthwise_relu"
    assert _producer(v2, "block_1_project") == "block_1_se"
    # Bottleneck from the expanded width (16 * 6 = 96), divisor 8: 96 / 16 = 6 -> 8.
    assert v2.get_layer("block_1_se").hidden == 8
    assert v2.get_layer("block_16_se").hidden == 64  # 960 / 16 = 60 -> 64

    v1s = se_shufflenet.SEShuffleNet(input_shape=(64, 64, 3), include_top=False)
    assert _producer(v1s, "stage2_block1_se") == "stage2_block1_3_bn"
    assert v1s.get_layer("stage2_block1_se").channels == 240 - 24  # the concat's new part
    concat = v1s.get_layer("stage2_block1_concat").input
    assert concat[1] is v1s.get_layer("stage2_block1_se").output
    assert _producer(v1s, "stage3_block2_se") == "stage3_block2_3_bn"
    assert v1s.get_layer("stage3_block2_add").input[1] is v1s.get_layer("stage3_block2_se").output
    # Shuffle between the grouped 1x1 and the depthwise conv (none after an ungrouped 1x1).
    assert _producer(v1s, "stage2_block2_2_conv") == "stage2_block2_shuffle"
    assert "stage2_block1_shuffle" not in {layer.name for layer in v1s.layers}
    v2s = se_shufflenet.SEShuffleNetV2(input_shape=(64, 64, 3), include_top=False)
    assert _producer(v2s, "stage3_block2_se") == "stage3_block2_3_relu"
    assert _producer(v2s, "stage3_block2_shuffle") == "stage3_block2_concat"


# --- Training and export ---------------------------------------------------------------


@pytest.mark.parametrize("model_name", list(BUILDERS))
def test_se_weights_receive_gradients(model_name):
    model = BUILDERS[model_name](input_shape=(64, 64, 3), classes=3)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )
    se_layers = _se_layers(model)
    for layer in se_layers:
        # With r=16 a bottleneck can have as few as 1-4 ReLU units; at initialisation all of
        # them can be negative (zero-gradient) by chance. A positive bias keeps them alive,
        # so that every SE weight must receive gradient if the block is wired in.
        layer.reduce_bias.assign(np.full(layer.reduce_bias.shape, 3.0))
    before = [[w.numpy().copy() for w in layer.weights] for layer in se_layers]
    model.fit(images((4, 64, 64, 3)), np.array([0, 1, 2, 0]), epochs=1, batch_size=4, verbose=0)
    for layer, old in zip(se_layers, before):
        for weight, value in zip(layer.weights, old):
            assert np.abs(weight.numpy() - value).max() > 0, f"{layer.name}/{weight.name}"


def test_shufflenet_v2_keras_file_round_trip(tmp_path):
    model = se_shufflenet.SEShuffleNetV2(alpha=0.5, input_shape=(64, 64, 3), classes=5)
    randomize_batch_norm(model)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    x = images((2, 64, 64, 3))
    np.testing.assert_allclose(
        restored.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


def test_weights_file_round_trip(tmp_path):
    model = se_shufflenet.SEShuffleNet(groups=8, alpha=0.5, input_shape=(64, 64, 3), classes=4)
    randomize_batch_norm(model)
    model.save_weights(tmp_path / "w.weights.h5")
    loaded = se_shufflenet.SEShuffleNet(
        groups=8,
        alpha=0.5,
        input_shape=(64, 64, 3),
        classes=4,
        weights=str(tmp_path / "w.weights.h5"),
    )
    x = images((2, 64, 64, 3))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["se_shufflenet", "se_shufflenet_v2"])
def test_shufflenets_train_under_xla(model_name):
    model = BUILDERS[model_name](input_shape=(64, 64, 3), classes=3)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=True)
    history = model.fit(images((4, 64, 64, 3)), np.array([0, 1, 2, 0]), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def to_tflite(model):
    """A float TFLite flatbuffer with builtin operators only (no Flex / select TF ops).

    TensorFlow 2.21's `from_keras_model` accepts Keras 3 models (it exports a SavedModel
    under the hood); it raises if any operator would need Flex.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def run_tflite(content, x, delegates):
    """(operator names, outputs) of a TFLite model; `delegates=False` runs TFLite's own
    builtin kernels (so the operator list is the model's), True the default (XNNPACK)."""
    import tensorflow as tf

    resolver = tf.lite.experimental.OpResolverType
    interpreter = tf.lite.Interpreter(
        model_content=content,
        experimental_op_resolver_type=resolver.AUTO
        if delegates
        else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    names = [op["op_name"] for op in interpreter._get_ops_details()]
    return names, interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def check_tflite(model_name, expected_ops):
    model = BUILDERS[model_name](input_shape=(96, 96, 3), classes=10, classifier_activation=None)
    randomize_batch_norm(model)
    content = to_tflite(model)
    x = images((2, 96, 96, 3))
    expected = model.predict(x, verbose=0)
    assert expected.std() > 0.05
    ops, out = run_tflite(content, x, delegates=False)
    assert set(ops) <= builtin_operators(), sorted(set(ops) - builtin_operators())
    assert expected_ops <= set(ops)
    assert np.abs(out - expected).max() <= 1e-4
    _, out = run_tflite(content, x, delegates=True)
    assert np.abs(out - expected).max() <= 1e-4
    return ops


def test_shufflenet_converts_to_builtin_tflite():
    ops = check_tflite("se_shufflenet", {"CONV_2D", "TRANSPOSE", "RESHAPE", "LOGISTIC"})
    # One CONV_2D per (grouped) convolution: no split-and-concat emulation.
    assert ops.count("CONV_2D") == 1 + 16 * 2 and ops.count("TRANSPOSE") == 15


@pytest.mark.slow
@pytest.mark.parametrize(
    "model_name, expected_ops",
    [
        ("se_mobilenet", {"CONV_2D", "DEPTHWISE_CONV_2D", "LOGISTIC"}),
        ("se_mobilenet_v2", {"CONV_2D", "DEPTHWISE_CONV_2D", "LOGISTIC", "ADD"}),
        ("se_shufflenet_v2", {"SPLIT", "TRANSPOSE", "CONCATENATION", "LOGISTIC"}),
    ],
)
def test_mobile_models_convert_to_builtin_tflite(model_name, expected_ops):
    check_tflite(model_name, expected_ops)


# --- The keras.applications contract ---------------------------------------------------


@pytest.mark.parametrize("model_name", list(BUILDERS))
def test_imagenet_weights_are_refused(model_name):
    with pytest.raises(ValueError, match=rf"No ImageNet weights.*{model_name}.*weights='imagenet'"):
        BUILDERS[model_name](weights="imagenet")


@pytest.mark.parametrize(
    "model_name, kwargs, message",
    [
        ("se_shufflenet", dict(groups=5), r"`groups`.*Received: groups=5"),
        ("se_shufflenet", dict(groups=True), r"`groups`.*Received: groups=True"),
        ("se_shufflenet", dict(alpha=0), r"`alpha`.*Received: alpha=0"),
        ("se_shufflenet", dict(weights="imagenet_base"), r"Received: weights='imagenet_base'"),
        ("se_shufflenet", dict(groups=[3]), r"`groups`.*Received: groups=\[3\]"),
        ("se_shufflenet_v2", dict(alpha=0.75), r"`alpha`.*Received: alpha=0.75"),
        ("se_shufflenet_v2", dict(alpha=True), r"`alpha`.*Received: alpha=True"),
        ("se_shufflenet_v2", dict(se_ratio=-1), r"`se_ratio`.*Received: se_ratio=-1"),
        (
            "se_shufflenet_v2",
            dict(include_top=False, pooling="mean"),
            r"`pooling`.*Received: pooling='mean'",
        ),
        ("se_mobilenet", dict(alpha=0.01), r"`alpha`.*Received: alpha=0.01"),
        ("se_mobilenet", dict(alpha="1"), r"`alpha`.*Received: alpha='1'"),
        ("se_mobilenet", dict(alpha=0.6, weights="imagenet_base"), r"`alpha`.*Received: alpha=0.6"),
        (
            "se_mobilenet",
            dict(depth_multiplier=2, weights="imagenet_base"),
            r"Received: depth_multiplier=2",
        ),
        ("se_mobilenet", dict(dropout=1.5), r"`dropout`.*Received: dropout=1.5"),
        (
            "se_mobilenet",
            dict(weights="imagenet_base", classes=10),
            r"`classes`.*Received: classes=10",
        ),
        (
            "se_mobilenet",
            dict(weights="imagenet_base", input_shape=(100, 100, 3)),
            r"Received: input_shape=\(100, 100, 3\)",
        ),
        ("se_mobilenet", dict(se_options={"ratio": 4}), r"`se_options`.*Received"),
        (
            "se_mobilenet_v2",
            dict(alpha=1.2, weights="imagenet_base"),
            r"`alpha`.*Received: alpha=1.2",
        ),
        ("se_mobilenet_v2", dict(input_shape=(16, 16, 3), include_top=False), r"at least 32x32"),
        ("se_mobilenet_v2", dict(se_ratio=0), r"`se_ratio`.*Received: se_ratio=0"),
        (
            "se_mobilenet_v2",
            dict(se_options={"gate": "softmax"}),
            r"`gate`.*Received: gate='softmax'",
        ),
    ],
)
def test_bad_arguments_name_argument_and_value(model_name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        BUILDERS[model_name](**kwargs)


@pytest.mark.parametrize("model_name", list(BUILDERS))
def test_headless_and_input_tensor(model_name):
    tensor = keras.Input((96, 96, 3))
    model = BUILDERS[model_name](input_tensor=tensor, include_top=False, pooling="max")
    assert model.inputs[0] is tensor and len(model.output.shape) == 2
    assert model.name.endswith("_96")
    features = BUILDERS[model_name](input_shape=(64, 80, 3), include_top=False)
    # keras' MobileNet (v1) pads stride-2 layers by one at the end only: 5 -> 2, not 3.
    expected = (2, 2) if model_name == "se_mobilenet" else (2, 3)
    assert features.output.shape[1:3] == expected
    # Every layer has a name given by the builder, none Keras' automatic one (the class
    # name in snake case, then a counter: `conv2d_3`, `re_lu_7`).
    for layer in features.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        automatic = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", type(layer).__name__)
        automatic = re.sub(r"([a-z])([A-Z])", r"\1_\2", automatic).lower()
        assert not re.fullmatch(rf"{automatic}(_\d+)?", layer.name), layer.name


def test_preprocessing():
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(se_mobilenet.preprocess_input(x.copy()), x / 127.5 - 1, atol=1e-6)
    expected = (x / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(se_shufflenet.preprocess_input(x.copy()), expected, atol=1e-5)
    preds = np.eye(1000, dtype="float32")[[3]]
    for module in (se_mobilenet, se_shufflenet):
        assert module.decode_predictions(preds, top=1)[0][0][:2] == ("n01491361", "tiger_shark")
