"""SE-MobileNet (v1) and SE-MobileNetV2: keras.applications' MobileNets with SE blocks.

Layers are named as in `keras.applications.MobileNet` / `MobileNetV2` (`conv_pw_1`,
`conv_pw_1_bn`, `block_1_expand`, ...), with one `SqueezeExcite` per block (`conv_pw_1_se`,
`block_1_se`), so `weights="imagenet_base"` copies keras' ImageNet weights by layer name and
`se_ratio=None` builds exactly the keras network (same layers, same parameters, same outputs).

Where SE goes:

- MobileNet v1: on the output of each of the 13 pointwise convolutions, after its BatchNorm
  and ReLU6 (the paper's SE-MobileNet; this placement gives its 4.7M parameters at 1.0-224).
- MobileNetV2: inside each inverted residual block, after the depthwise convolution's
  BatchNorm and ReLU6, before the linear projection, with the bottleneck width taken from the
  expanded channels and rounded to a multiple of 8. This is where MnasNet and MobileNetV3 put
  SE: the expanded, spatially filtered features are the widest representation in the block
  (6x the block's input), so the gate recalibrates the channels the projection mixes, while
  the projection's output is linear (no ReLU) and low-dimensional, where a multiplicative gate
  would only rescale the bottleneck the residual connection carries.

Neither network's SE weights were released: `weights` is None (default), `"imagenet_base"`
(keras' MobileNet weights in every non-SE layer, SE layers freshly initialised) or a file.
"""

import dataclasses

import keras
from keras import layers

from se_keras.applications import _builder, imagenet_utils
from se_keras.applications._registry import BASE_TAG, ModelEntry
from se_keras.layers import bottleneck_width
from se_keras.utils.validation import check_positive


@dataclasses.dataclass(frozen=True)
class MobileNetSpec:
    keras_builder: str  # the keras.applications base network
    blocks: tuple  # v1: (pointwise filters, stride); v2: (expansion, filters, repeats, stride)
    sizes: tuple  # input sizes keras released ImageNet weights for
    alphas: tuple  # width multipliers keras released ImageNet weights for
    bn_momentum: float  # keras' choices: the default 0.99 (v1), 0.999 (v2)
    se_divisor: int  # bottleneck width rounding (SqueezeExcite `divisor`)
    version: int  # 1: MobileNet, 2: MobileNetV2

    @property
    def se_defaults(self):
        return {"divisor": self.se_divisor}


_V1 = MobileNetSpec(
    "MobileNet",
    (
        (64, 1),
        (128, 2),
        (128, 1),
        (256, 2),
        (256, 1),
        (512, 2),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (1024, 2),
        (1024, 1),
    ),
    sizes=(128, 160, 192, 224),
    alphas=(0.25, 0.5, 0.75, 1.0),
    bn_momentum=0.99,
    se_divisor=1,
    version=1,
)
_V2 = MobileNetSpec(
    "MobileNetV2",
    (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ),
    sizes=(96, 128, 160, 192, 224),
    alphas=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
    bn_momentum=0.999,
    se_divisor=8,
    version=2,
)


def make_divisible(value, divisor=8):
    """MobileNetV2's channel rounding (keras' `_make_divisible`): the SE layer's rule."""
    return bottleneck_width(value, ratio=1, divisor=divisor)


def _batch_norm(x, spec, name):
    return layers.BatchNormalization(
        axis=_builder.channel_axis(), epsilon=1e-3, momentum=spec.bn_momentum, name=name
    )(x)


def _correct_pad(x, kernel=3):
    """keras.applications' `correct_pad`: TF-style padding of a stride-2 convolution."""
    rows, cols = _builder.spatial_size(x.shape[1:])
    adjust = (1, 1) if rows is None else (1 - rows % 2, 1 - cols % 2)
    half = kernel // 2
    return ((half - adjust[0], half), (half - adjust[1], half))


def _v1_body(x, spec, args):
    alpha = args.alpha
    x = layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="conv1")(
        x
    )
    x = layers.ReLU(6.0, name="conv1_relu")(_batch_norm(x, spec, "conv1_bn"))
    for block_id, (filters, stride) in enumerate(spec.blocks, start=1):
        if stride > 1:
            x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(x)
        x = layers.DepthwiseConv2D(
            3,
            strides=stride,
            padding="same" if stride == 1 else "valid",
            depth_multiplier=args.depth_multiplier,
            use_bias=False,
            name=f"conv_dw_{block_id}",
        )(x)
        x = _batch_norm(x, spec, f"conv_dw_{block_id}_bn")
        x = layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
        x = layers.Conv2D(
            int(filters * alpha), 1, padding="same", use_bias=False, name=f"conv_pw_{block_id}"
        )(x)
        x = _batch_norm(x, spec, f"conv_pw_{block_id}_bn")
        x = layers.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)
        x = _builder.squeeze_excite(x, args.se, f"conv_pw_{block_id}_se")
    return x


def head(x, spec, args):
    if spec.version == 2 or not args.include_top:
        return _builder.default_head(x, spec, args)
    # keras' MobileNet classifies with a 1x1 convolution (`conv_preds`), kept for the copy.
    x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
    x = layers.Dropout(args.dropout, name="dropout")(x)
    x = layers.Conv2D(args.classes, 1, padding="same", name="conv_preds")(x)
    x = layers.Reshape((args.classes,), name="reshape_2")(x)
    return layers.Activation(args.classifier_activation, name="predictions")(x)


def _inverted_residual(x, spec, expansion, filters, stride, block_id, se):
    channels = x.shape[_builder.channel_axis()]
    inputs = x
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    if block_id:
        x = layers.Conv2D(
            expansion * channels, 1, padding="same", use_bias=False, name=f"{prefix}expand"
        )(x)
        x = _batch_norm(x, spec, f"{prefix}expand_BN")
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    if stride == 2:
        x = layers.ZeroPadding2D(_correct_pad(x), name=f"{prefix}pad")(x)
    x = layers.DepthwiseConv2D(
        3,
        strides=stride,
        padding="same" if stride == 1 else "valid",
        use_bias=False,
        name=f"{prefix}depthwise",
    )(x)
    x = _batch_norm(x, spec, f"{prefix}depthwise_BN")
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    x = _builder.squeeze_excite(x, se, f"{prefix}se")
    x = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=f"{prefix}project")(x)
    x = _batch_norm(x, spec, f"{prefix}project_BN")
    if channels == filters and stride == 1:
        x = layers.Add(name=f"{prefix}add")([inputs, x])
    return x


def _v2_body(x, spec, args):
    alpha = args.alpha
    x = layers.Conv2D(
        make_divisible(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="Conv1"
    )(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(_batch_norm(x, spec, "bn_Conv1"))
    block_id = 0
    for expansion, filters, repeats, stride in spec.blocks:
        for repeat in range(repeats):
            x = _inverted_residual(
                x,
                spec,
                expansion,
                make_divisible(int(filters * alpha)),
                stride if repeat == 0 else 1,
                block_id,
                args.se,
            )
            block_id += 1
    last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
    x = layers.Conv2D(last, 1, use_bias=False, name="Conv_1")(x)
    return layers.ReLU(6.0, name="out_relu")(_batch_norm(x, spec, "Conv_1_bn"))


def check(spec, args):
    _builder.check_width("alpha", args.alpha, 1 / 32 if spec.version == 1 else None)
    if spec.version == 1:
        check_positive("depth_multiplier", args.depth_multiplier)
        dropout = args.dropout
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, (int, float))
            or not 0 <= dropout < 1
        ):
            raise ValueError(
                "Invalid value for argument `dropout`: expected a rate in [0, 1). "
                f"Received: dropout={dropout!r}"
            )
    if args.weights != BASE_TAG:
        return
    if args.alpha not in spec.alphas:
        raise ValueError(
            f'With `weights="{BASE_TAG}"`, `alpha` must be one of {list(spec.alphas)} (the '
            f"widths keras.applications.{spec.keras_builder} has weights for). "
            f"Received: alpha={args.alpha!r}"
        )
    if spec.version == 1 and args.depth_multiplier != 1:
        raise ValueError(
            f'With `weights="{BASE_TAG}"`, `depth_multiplier` must be 1. '
            f"Received: depth_multiplier={args.depth_multiplier!r}"
        )


def body(inputs, spec, args):
    return (_v1_body if spec.version == 1 else _v2_body)(inputs, spec, args)


def default_name(spec, args, rows):
    return f"{args.model_name}_{args.alpha:0.2f}_{rows}"


def base(spec, args, input_shape):
    """The keras.applications network whose ImageNet weights `imagenet_base` copies: same
    width and top, at the input size whose weights keras would pick for this input."""
    rows, cols = _builder.spatial_size(input_shape)
    size = rows if rows == cols and rows in spec.sizes else 224
    channels_first = keras.config.image_data_format() == "channels_first"
    shape = (3, size, size) if channels_first else (size, size, 3)

    def build():
        # Looked up at call time, so that the base can be replaced (tests, custom mirrors).
        network = getattr(keras.applications, spec.keras_builder)
        return network(
            input_shape=shape, alpha=args.alpha, include_top=args.include_top, weights="imagenet"
        )

    return build


_ARGS = """
    Args:
        input_shape: optional shape tuple, at least 32x32; required to be the default
            (224x224, or another size with released weights) when `include_top=True` and
            `weights="imagenet_base"`.
        alpha: width multiplier; every layer's channel count is scaled by it.{extra_args}
        include_top: whether to include the classifier.
        weights: `None` (random initialisation, the default: no SE weights were released),
            `"imagenet_base"` (keras.applications' ImageNet weights copied into every non-SE
            layer by name; alpha in {alphas}) or the path to a weights file.
        input_tensor: optional Keras tensor to use as the model's input.
        pooling: `None`, `"avg"` or `"max"` pooling of the features when `include_top=False`.
        classes: number of classes when `include_top=True` (1000 with `"imagenet_base"`).
        classifier_activation: activation of the top layer (`None` returns logits).
        name: the model's name; default `"{model_name}_<alpha>_<rows>"`.
        se_ratio: SE reduction ratio r (default 16, the paper's); `None` builds the plain
            keras.applications network.
        se_options: extra `SqueezeExcite` arguments, e.g. `{{"gate": "hard_sigmoid"}}`.

    Input: RGB images preprocessed with `se_keras.applications.se_mobilenet.preprocess_input`
    (scaled to [-1, 1], as keras' MobileNets expect).

    Returns:
        A `keras.Model`.
"""


_V1_DOC = """Instantiates SE-MobileNet (v1; Howard et al. 2017 with SE, Hu et al. 2018).

    Mirrors `keras.applications.MobileNet` (same arguments, order and defaults, except
    `weights=None`), with SE on the output of each of the 13 pointwise convolutions (after
    its BatchNorm and ReLU6), bottleneck width `C // se_ratio`.
""" + _ARGS.format(
    extra_args="\n        depth_multiplier: depth multiplier of the depthwise convolutions."
    "\n        dropout: dropout rate before the classifier (default 1e-3, as keras').",
    alphas=list(_V1.alphas),
    model_name="se_mobilenet",
)
_V2_DOC = """Instantiates SE-MobileNetV2 (Sandler et al. 2018 with SE).

    Mirrors `keras.applications.MobileNetV2` (same arguments, order and defaults, except
    `weights=None`). Each inverted residual block has SE after its depthwise convolution's
    BatchNorm and ReLU6, before the projection (as in MnasNet and MobileNetV3), with the
    bottleneck width `expanded channels / se_ratio` rounded to a multiple of 8: the gate acts
    on the block's widest features, whereas the projection's output is a linear bottleneck.
""" + _ARGS.format(
    extra_args="",
    alphas=list(_V2.alphas),
    model_name="se_mobilenet_v2",
)

MODELS = (
    ModelEntry(
        "se_mobilenet",
        "SEMobileNet",
        _V1,
        224,
        32,
        1024,
        params=4_718_044,
        macs=574_639_104,
        paper_macs="572M (4.7M params)",
        imagenet_base=True,
        searched=True,
    ),
    ModelEntry(
        "se_mobilenet_v2",
        "SEMobileNetV2",
        _V2,
        224,
        32,
        1280,
        params=4_122_816,
        macs=305_988_224,
        imagenet_base=True,
        searched=True,
    ),
)

FAMILY = _builder.Family(
    MODELS,
    body,
    check=check,
    head=head,
    input_shape=_builder.mobile_input_shape,
    default_name=default_name,
    base=base,
)
SEMobileNet = FAMILY.public_builder(
    "se_mobilenet",
    _V1_DOC,
    _builder.keras_arguments(leading={"alpha": 1.0, "depth_multiplier": 1, "dropout": 1e-3}),
    name=False,
)
SEMobileNetV2 = FAMILY.public_builder(
    "se_mobilenet_v2", _V2_DOC, _builder.keras_arguments(leading={"alpha": 1.0}), name=False
)


PREPROCESS_MODE = "tf"  # what `preprocess_input` does, for tf.data pipelines


def preprocess_input(x, data_format=None):
    """RGB images in [0, 255] -> [-1, 1] (keras' MobileNet preprocessing, mode "tf")."""
    return keras.applications.imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


decode_predictions = imagenet_utils.decode_predictions
