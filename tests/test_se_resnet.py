"""The SE-ResNet family against keras.applications' contract and the paper's numbers."""

import keras
import numpy as np
import pytest

import se_keras
from se_keras.applications import se_resnet
from se_keras.utils.flops import count_macs


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_registry_lists_every_builder():
    resnets = [
        "se_resnet18",
        "se_resnet34",
        "se_resnet50",
        "se_resnet101",
        "se_resnet152",
        "se_resnext50",
        "se_resnext101",
        "senet154",
    ]
    others = [
        "se_bn_inception",
        "se_inception_resnet_v2",
        "se_inception_v3",
        "se_mobilenet",
        "se_mobilenet_v2",
    ]
    assert se_keras.applications.list_models() == others + resnets[:-1] + [
        "se_shufflenet",
        "se_shufflenet_v2",
        "se_vgg16",
        "se_vgg19",
        "senet154",
    ] + [name for name in se_keras.applications.list_models() if name.startswith("timm_")]
    model = se_keras.applications.get_model("se_resnet18", weights=None, classes=7)
    assert model.name == "se_resnet18" and model.output.shape == (None, 7)


def test_unknown_model_name():
    with pytest.raises(ValueError, match=r"Received: name='resnet9'"):
        se_keras.applications.get_model("resnet9")


def test_plain_network_has_resnet50_parameter_count():
    # torchvision's ResNet-50 (no conv biases): 25,557,032 parameters.
    assert trainable(se_keras.applications.SEResNet50(weights=None, se_ratio=None)) == 25_557_032


# The paper prints its ablation parameter counts rounded to 0.1M from a slightly different
# training setup; ours agree within 0.5%.
def close_to_paper(model, millions):
    return abs(trainable(model) / 1e6 - millions) <= 0.005 * millions


# Paper section 6: parameters with SE in one stage only (released SE layout, with biases).
@pytest.mark.parametrize("stages, millions", [((2,), 25.6), ((3,), 25.7), ((4,), 26.4)])
def test_stage_ablation_parameter_counts(stages, millions):
    model = se_keras.applications.SEResNet50(weights=None, se_stages=stages)
    assert close_to_paper(model, millions)


# Paper section 6.1: the reduction-ratio ablation (run without SE biases).
@pytest.mark.parametrize(
    "ratio, millions", [(2, 45.7), (4, 35.7), (8, 30.7), (16, 28.1), (32, 26.9)]
)
def test_ratio_ablation_parameter_counts(ratio, millions):
    model = se_keras.applications.SEResNet50(
        weights=None, se_ratio=ratio, se_options={"use_bias": False}
    )
    assert close_to_paper(model, millions)


# Paper Table 2 GFLOPs (multiply-adds) at 224x224.
@pytest.mark.parametrize(
    "name, gflops",
    [
        ("se_resnet50", 3.87),
        ("se_resnet101", 7.60),
        ("se_resnet152", 11.32),
        ("se_resnext50", 4.25),
        ("se_resnext101", 8.00),
    ],
)
def test_multiply_adds_match_the_paper(name, gflops):
    macs = count_macs(se_keras.applications.get_model(name, weights=None))
    assert abs(macs / 1e9 - gflops) <= 0.015 * gflops


def _producer(model, layer_name):
    """Name of the layer whose output feeds `layer_name`."""
    tensor = model.get_layer(layer_name).input
    return next(layer.name for layer in model.layers if layer.output is tensor)


@pytest.mark.parametrize(
    "position, feeds_se, se_feeds",
    [
        ("standard", "conv2_block2_3_bn", "conv2_block2_add"),
        ("pre", "conv2_block1_out", "conv2_block2_1_conv"),
        ("post", "conv2_block2_out", "conv2_block3_1_conv"),
        ("identity", "conv2_block1_out", "conv2_block2_add"),
    ],
)
def test_se_position_wiring(position, feeds_se, se_feeds):
    model = se_keras.applications.SEResNet50(
        weights=None, se_position=position, input_shape=(64, 64, 3), include_top=False
    )
    assert _producer(model, "conv2_block2_se") == feeds_se
    consumer = model.get_layer(se_feeds)
    inputs = consumer.input if isinstance(consumer.input, list) else [consumer.input]
    assert any(t is model.get_layer("conv2_block2_se").output for t in inputs)


def test_se_stages_leave_other_stages_plain():
    model = se_keras.applications.SEResNet50(weights=None, se_stages=(3, 5))
    se_layers = {layer.name.split("_")[0] for layer in model.layers if "_se" in layer.name}
    assert se_layers == {"conv3", "conv5"}


def test_se_options_reach_every_block():
    model = se_keras.applications.SEResNet18(
        weights=None, se_options={"pooling": "max", "gate": "tanh"}, include_top=False
    )
    blocks = [layer for layer in model.layers if isinstance(layer, se_keras.layers.SqueezeExcite)]
    assert len(blocks) == 8 and all(b.pooling == "max" and b.gate == "tanh" for b in blocks)


def test_headless_features_at_a_non_square_size():
    # Pooled outputs and variable sizes: tests/test_applications_contract.py.
    model = se_keras.applications.SEResNet18(
        weights=None, include_top=False, input_shape=(64, 96, 3)
    )
    assert model.output.shape == (None, 2, 3, 512)


def test_input_tensor_is_used():
    tensor = keras.Input((96, 96, 3))
    model = se_keras.applications.SEResNet18(weights=None, input_tensor=tensor, classes=5)
    assert model.inputs[0] is tensor and model.output.shape == (None, 5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(weights="imagenett"), r"`weights`.*Received: weights='imagenett'"),
        (dict(weights="missing/file.pth"), r"Received: weights='missing/file.pth'"),
        (
            dict(input_shape=(31, 64, 3), include_top=False),
            r"at least 32x32.*input_shape=\(31, 64, 3\)",
        ),
        (dict(include_top=False, pooling="mean"), r"`pooling`.*Received: pooling='mean'"),
        (dict(se_stages=(1, 2)), r"`se_stages`.*Received: se_stages=\(1, 2\)"),
        (dict(se_stages=(6,)), r"Received: se_stages=\(6,\)"),
        (dict(se_stages=4), r"Received: se_stages=4"),
        (dict(se_options={"ratio": 8}), r"`se_options`.*Received: se_options=\{'ratio': 8\}"),
        (dict(pooling="mean"), r"`pooling`.*Received: pooling='mean'"),
        (dict(se_position="middle"), r"`se_position`.*Received: se_position='middle'"),
        (dict(se_ratio=0), r"`se_ratio`.*Received: se_ratio=0"),
        (dict(input_shape=(64, 64)), r"`input_shape`.*Received: input_shape=\(64, 64\)"),
        (
            dict(input_shape=(64, None, 3)),
            r"static `input_shape`.*Received: input_shape=\(64, None, 3\)",
        ),
        (dict(se_options={"gate": "softmax"}), r"`gate`.*Received: gate='softmax'"),
    ],
)
def test_bad_arguments_name_argument_and_value(kwargs, message):
    kwargs = {"weights": None, **kwargs}
    with pytest.raises(ValueError, match=message):
        se_keras.applications.SEResNet18(**kwargs)


def test_preprocess_input_is_the_authors_normalisation():
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = (images / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(se_resnet.preprocess_input(images.copy()), expected, atol=1e-5)
    first = se_resnet.preprocess_input(
        images.transpose(0, 3, 1, 2).copy(), data_format="channels_first"
    )
    np.testing.assert_allclose(first, expected.transpose(0, 3, 1, 2), atol=1e-5)


def test_keras_file_round_trip_and_training_step(tmp_path):
    model = se_keras.applications.SEResNet18(weights=None, input_shape=(64, 64, 3), classes=4)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=True)
    images = np.random.default_rng(0).standard_normal((4, 64, 64, 3)).astype("float32")
    before = [w.numpy().copy() for w in model.get_layer("conv5_block2_se").weights]
    model.fit(images, np.arange(4), epochs=1, verbose=0)
    after = model.get_layer("conv5_block2_se").weights
    assert all(np.abs(a.numpy() - b).max() > 0 for a, b in zip(after, before))

    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)  # no custom_objects: the layer is registered
    np.testing.assert_allclose(
        restored.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6
    )


@pytest.mark.slow
def test_grouped_convolution_trains_under_xla():
    model = se_keras.applications.SEResNeXt50(weights=None, input_shape=(64, 64, 3), classes=3)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=True)
    images = np.random.default_rng(0).standard_normal((2, 64, 64, 3)).astype("float32")
    eager = model.predict(images, verbose=0)
    history = model.fit(images, np.arange(2), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and eager.shape == (2, 3)
