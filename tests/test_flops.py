"""count_macs against the paper's tables and against counts worked out by hand."""

import keras
import pytest

from se_keras.layers import SqueezeExcite
from se_keras.utils.flops import count_macs, format_macs


# Independent references: paper Table 2 (ResNet-50 3.86 GFLOPs; the layout counts 3.858 G
# multiply-adds), the paper's mobile table (MobileNet 569 MFLOPs) and the commonly quoted
# 15.47 G multiply-adds of VGG-16.
@pytest.mark.parametrize(
    "builder, expected, tolerance",
    [
        (keras.applications.ResNet50, 3.858e9, 0.005),
        (keras.applications.MobileNet, 569e6, 0.015),
        (keras.applications.VGG16, 15.47e9, 0.015),
    ],
    ids=["resnet50", "mobilenet", "vgg16"],
)
def test_keras_applications_match_published_counts(builder, expected, tolerance):
    assert count_macs(builder(weights=None)) == pytest.approx(expected, rel=tolerance)


def _hand_model():
    inputs = keras.Input((8, 8, 6))
    x = keras.layers.Conv2D(12, 3, padding="same", groups=3)(inputs)  # 8x8x12
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(x)
    x = SqueezeExcite(width=6)(x)  # 4x4x24
    x = keras.layers.SeparableConv2D(10, 3)(x)  # 2x2x10
    x = keras.layers.Dense(5)(x)  # on a rank-4 tensor: 2x2x5
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3)(x)
    return keras.Model(inputs, outputs)


HAND_MACS = (
    3 * 3 * (6 // 3) * 12 * 8 * 8  # grouped conv: kernel * (Cin / groups) * Cout * HW = 13824
    + 3 * 3 * 24 * 4 * 4  # depthwise, 12 channels x multiplier 2, stride 2 = 3456
    + (16 * 24 + 2 * 24 * 6 + 16 * 24)  # SE: pool adds + two FCs + scale = 1056
    + (3 * 3 * 24 * 2 * 2 + 24 * 10 * 2 * 2)  # separable: depthwise 864 + pointwise 960
    + 10 * 5 * 2 * 2  # Dense per position = 200
    + 20 * 3  # Dense on the flattened 2x2x5 = 60
)


def test_hand_counted_model():
    assert HAND_MACS == 20420
    assert count_macs(_hand_model()) == HAND_MACS


def test_channels_first_and_transposed_conv():
    inputs = keras.Input((4, 10, 10))
    x = keras.layers.Conv2D(8, 3, data_format="channels_first")(inputs)  # 8x8x8
    x = SqueezeExcite(width=2, data_format="channels_first")(x)
    x = keras.layers.Conv2DTranspose(2, 2, strides=2, data_format="channels_first")(x)
    model = keras.Model(inputs, x)
    expected = (
        3 * 3 * 4 * 8 * 8 * 8  # 18432
        + (64 * 8 + 2 * 8 * 2 + 64 * 8)  # 1056
        + 2 * 2 * 8 * 2 * 8 * 8  # transposed: kernel * Cin * Cout * input HW = 4096
    )
    assert count_macs(model) == expected


def test_nested_model_is_counted():
    inputs = keras.Input((7,))
    inner = keras.Model(inputs, keras.layers.Dense(4)(inputs), name="inner")
    outer_in = keras.Input((7,))
    outer = keras.Model(outer_in, keras.layers.Dense(3)(inner(outer_in)))
    assert count_macs(outer) == 7 * 4 + 4 * 3


def test_sequential():
    model = keras.Sequential([keras.Input((5, 5, 2)), keras.layers.Conv2D(3, 1)])
    assert count_macs(model) == 2 * 3 * 25


def test_unknown_spatial_size_is_an_error():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    with pytest.raises(ValueError, match=r"model input shape=\(None, None, None, 3\)"):
        count_macs(model)


@pytest.mark.parametrize(
    "n, text",
    [
        (3857973248, "3.86G"),
        (568740352, "569M"),
        (15470264320, "15.5G"),
        (999_960_000, "1G"),
        (1056, "1.06K"),
        (60, "60"),
    ],
)
def test_format_macs(n, text):
    assert format_macs(n) == text
