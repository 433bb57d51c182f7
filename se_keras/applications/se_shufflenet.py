"""SE-ShuffleNet (v1; Zhang et al. 2018) and SE-ShuffleNetV2 (Ma et al. 2018).

SE sits on the residual branch, on its last BatchNorm (v1) or ReLU (v2), before the
addition or concatenation with the shortcut (and, in v2, before the channel shuffle); its
bottleneck width is `branch channels // se_ratio`. At 1x, g=3 this gives the paper's SE-
ShuffleNet (about 2.5M parameters against the table's 2.4M; SE on the whole unit output would
give 2.6M).

Both run on TensorFlow Lite with builtin operators only: a grouped 1x1 convolution is one
`Conv2D(groups=g)` (one CONV_2D), the channel shuffle a `ChannelShuffle` layer (RESHAPE,
TRANSPOSE, RESHAPE), ShuffleNet V2's channel split a `ChannelSplit` layer (SPLIT).

Stride-2 convolutions and pools pad one pixel on every side (PyTorch's `padding=1`, as in
torchvision's ShuffleNetV2 and the ShuffleNet-Series reference code) rather than Keras'
bottom/right-only "same".

No ImageNet weights were released for either: `weights` is None or a weights file.
"""

import dataclasses
import math

from keras import layers

from se_keras.applications import _builder, imagenet_utils
from se_keras.applications._registry import ModelEntry
from se_keras.layers import ChannelShuffle, ChannelSplit
from se_keras.utils.validation import check_choice

STEM_CHANNELS = 24
# ShuffleNet v1, Table 1: output channels of stages 2-4 at 1x, per number of groups.
V1_WIDTHS = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
# ShuffleNet V2, Table 5: output channels of stages 2-4 and of conv5, per width.
V2_WIDTHS = {
    0.5: (48, 96, 192, 1024),
    1.0: (116, 232, 464, 1024),
    1.5: (176, 352, 704, 1024),
    2.0: (244, 488, 976, 2048),
}


@dataclasses.dataclass(frozen=True)
class ShuffleNetSpec:
    version: int
    repeats: tuple = (4, 8, 4)  # units in stages 2-4; the first of each has stride 2
    sizes: tuple = ()  # input sizes with released weights (`_builder.mobile_input_shape`)


def v1_widths(alpha, groups):
    """(stem, stage 2, stage 3, stage 4) channels of ShuffleNet `alpha`x with `groups`.

    The paper scales every width by `alpha`; so that every grouped convolution divides
    evenly at any scale, stage widths round up to a multiple of `4 * groups` (the bottleneck
    is a quarter of the width) and the stem to a multiple of `groups` (tensorpack's
    ShuffleNet rule). At 1x this is the paper's table exactly.
    """

    def up(value, multiple):
        # round() first, so that float noise (240 * 0.3 = 72.00000000000001) cannot round up.
        return math.ceil(round(value * alpha, 6) / multiple) * multiple

    stages = tuple(up(width, 4 * groups) for width in V1_WIDTHS[groups])
    return (up(STEM_CHANNELS, groups), *stages)


def _pool(x, kind, name):
    """3x3/2 pooling padded by one on every side. Zero padding is exact for the max pool
    (its input is post-ReLU) and makes the average count the padding, as PyTorch's
    `AvgPool2d(3, 2, 1)` does."""
    x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    pool = layers.MaxPooling2D if kind == "max" else layers.AveragePooling2D
    return pool(3, strides=2, name=f"{name}_pool")(x)


def _stem(x, channels):
    x = _builder.conv_bn(x, channels, 3, "conv1", stride=2)
    return _pool(x, "max", "pool1")


def _v1_unit(x, out_channels, groups, stride, first_grouped, se, name):
    """Figure 2(b) (stride 1: add) and 2(c) (stride 2: concat with an average pool)."""
    axis = _builder.channel_axis()
    in_channels = x.shape[axis]
    branch_channels = out_channels - in_channels if stride > 1 else out_channels
    first_groups = groups if first_grouped else 1
    y = _builder.conv_bn(x, out_channels // 4, 1, f"{name}_1", groups=first_groups)
    if first_groups > 1:
        y = ChannelShuffle(groups, name=f"{name}_shuffle")(y)
    y = _builder.conv_bn(y, None, 3, f"{name}_2", stride=stride, relu=False, depthwise=True)
    y = _builder.conv_bn(y, branch_channels, 1, f"{name}_3", groups=groups, relu=False)
    y = _builder.squeeze_excite(y, se, f"{name}_se")
    if stride > 1:
        shortcut = _pool(x, "avg", f"{name}_0")
        x = layers.Concatenate(axis=axis, name=f"{name}_concat")([shortcut, y])
    else:
        x = layers.Add(name=f"{name}_add")([x, y])
    return layers.ReLU(name=f"{name}_out")(x)


def _v2_unit(x, out_channels, stride, se, name):
    """Figure 3(c) (stride 1: channel split) and 3(d) (stride 2: both branches convolve)."""
    half = out_channels // 2
    if stride > 1:
        shortcut = _builder.conv_bn(
            x, None, 3, f"{name}_0_1", stride=stride, relu=False, depthwise=True
        )
        shortcut = _builder.conv_bn(shortcut, half, 1, f"{name}_0_2")
        branch = x
    else:
        shortcut, branch = ChannelSplit(2, name=f"{name}_split")(x)
    y = _builder.conv_bn(branch, half, 1, f"{name}_1")
    y = _builder.conv_bn(y, None, 3, f"{name}_2", stride=stride, relu=False, depthwise=True)
    y = _builder.conv_bn(y, half, 1, f"{name}_3")
    y = _builder.squeeze_excite(y, se, f"{name}_se")
    x = layers.Concatenate(axis=_builder.channel_axis(), name=f"{name}_concat")([shortcut, y])
    return ChannelShuffle(2, name=f"{name}_shuffle")(x)


def _v1_body(x, spec, args):
    groups, se = args.groups, args.se
    stem, *widths = v1_widths(args.alpha, groups)
    x = _stem(x, stem)
    for stage, (repeats, width) in enumerate(zip(spec.repeats, widths), start=2):
        for block in range(1, repeats + 1):
            # The paper does not group stage 2's first pointwise convolution: its input
            # (the stem's 24 channels) is too narrow.
            first_grouped = not (stage == 2 and block == 1)
            stride = 2 if block == 1 else 1
            x = _v1_unit(x, width, groups, stride, first_grouped, se, f"stage{stage}_block{block}")
    return x


def _v2_body(x, spec, args):
    *widths, last = V2_WIDTHS[args.alpha]
    x = _stem(x, STEM_CHANNELS)
    for stage, (repeats, width) in enumerate(zip(spec.repeats, widths), start=2):
        for block in range(1, repeats + 1):
            x = _v2_unit(x, width, 2 if block == 1 else 1, args.se, f"stage{stage}_block{block}")
    return _builder.conv_bn(x, last, 1, "conv5")


def _check_no_bool(name, value, choices):
    # True == 1 and True == 1.0, but True is neither a number of groups nor a width.
    check_choice(name, value, () if isinstance(value, bool) else choices)


def check(spec, args):
    if spec.version == 1:
        _check_no_bool("groups", args.groups, tuple(V1_WIDTHS))
        _builder.check_width("alpha", args.alpha)
    else:
        _check_no_bool("alpha", args.alpha, tuple(V2_WIDTHS))


def body(inputs, spec, args):
    return (_v1_body if spec.version == 1 else _v2_body)(inputs, spec, args)


def default_name(spec, args, rows):
    groups = f"_g{args.groups}" if spec.version == 1 else ""
    return f"{args.model_name}{groups}_{args.alpha:0.2f}_{rows}"


_ARGS = """
    Args:
        input_shape: optional shape tuple, at least 32x32; (224, 224, 3) by default.
        alpha: width multiplier{alpha_doc}
        include_top: whether to include the classifier.
        weights: `None` (random initialisation; no ImageNet weights were released) or the
            path to a weights file.
        input_tensor: optional Keras tensor to use as the model's input.
        pooling: `None`, `"avg"` or `"max"` pooling of the features when `include_top=False`.
        classes: number of classes when `include_top=True`.
        classifier_activation: activation of the top layer (`None` returns logits).
        name: the model's name; default `"{default_name}_<rows>"`.
        se_ratio: SE reduction ratio r (default 16); `None` builds the plain network.
        se_options: extra `SqueezeExcite` arguments, e.g. `{{"gate": "hard_sigmoid"}}`.

    Input: RGB images preprocessed with `se_keras.applications.se_shufflenet.preprocess_input`
    (ImageNet mean/std normalisation, as torchvision's ShuffleNetV2 weights expect).

    Returns:
        A `keras.Model`.
"""


_V1_DOC = """Instantiates SE-ShuffleNet (v1; Zhang et al. 2018, with SE).

    Units: grouped 1x1 convolution (not grouped in stage 2's first unit), channel shuffle,
    3x3 depthwise convolution, grouped 1x1 convolution, SE, then addition with the input
    (stride 1) or concatenation with its 3x3/2 average pool (stride 2), and ReLU. Stem: 3x3/2
    convolution (24 channels at 1x) and 3x3/2 max pool; 4, 8 and 4 units in stages 2-4;
    bottleneck a quarter of the unit's output width.
""" + _ARGS.format(
    alpha_doc=" (the paper's `s`x; default 1x). Stage widths round up to a multiple of\n"
    "            `4 * groups`, the stem's to a multiple of `groups` (so 1x is the paper's).\n"
    "        groups: groups of the 1x1 convolutions, one of 1, 2, 3, 4, 8 (default 3).\n"
    "            Stage output channels at 1x: g=1: 144, 288, 576; g=2: 200, 400, 800;\n"
    "            g=3: 240, 480, 960; g=4: 272, 544, 1088; g=8: 384, 768, 1536.",
    default_name="se_shufflenet_g<groups>_<alpha>",
)
_V2_DOC = """Instantiates SE-ShuffleNetV2 (Ma et al. 2018, with SE).

    Units: stride 1 splits the channels in two halves, one passes through and the other goes
    through 1x1 conv, 3x3 depthwise conv, 1x1 conv and SE; stride 2 feeds the whole input to
    both branches (the shortcut one: 3x3/2 depthwise conv, 1x1 conv). The halves are then
    concatenated and shuffled (2 groups). Stem: 3x3/2 convolution (24 channels) and 3x3/2 max
    pool; 4, 8 and 4 units in stages 2-4; a final 1x1 convolution (conv5) before pooling.
""" + _ARGS.format(
    alpha_doc=": 0.5, 1.0 (default), 1.5 or 2.0; stage widths 48/96/192,\n"
    "            116/232/464, 176/352/704 or 244/488/976, conv5 1024 (2048 at 2x).",
    default_name="se_shufflenet_v2_<alpha>",
)

MODELS = (
    ModelEntry(
        "se_shufflenet",
        "SEShuffleNet",
        ShuffleNetSpec(1),
        224,
        32,
        960,
        params=2_484_533,
        macs=141_279_216,
        paper_macs="142M (2.4M params)",
        searched=True,
    ),
    ModelEntry(
        "se_shufflenet_v2",
        "SEShuffleNetV2",
        ShuffleNetSpec(2),
        224,
        32,
        1024,
        params=2_321_184,
        macs=145_766_856,
        searched=True,
    ),
)

FAMILY = _builder.Family(
    MODELS,
    body,
    check=check,
    input_shape=_builder.mobile_input_shape,
    default_name=default_name,
)
SEShuffleNet = FAMILY.public_builder(
    "se_shufflenet",
    _V1_DOC,
    _builder.keras_arguments(leading={"alpha": 1.0, "groups": 3}),
    name=False,
)
SEShuffleNetV2 = FAMILY.public_builder(
    "se_shufflenet_v2", _V2_DOC, _builder.keras_arguments(leading={"alpha": 1.0}), name=False
)

# No weights were released for ShuffleNet; the zoo's ImageNet normalisation (RGB / 255, then
# mean/std), which torchvision's ShuffleNetV2 weights also use, is the natural default.
PREPROCESS_MODE = "torch"  # what `preprocess_input` does, for tf.data pipelines
preprocess_input = imagenet_utils.preprocess_input
decode_predictions = imagenet_utils.decode_predictions
