"""SE-VGG-16 and SE-VGG-19: keras.applications' VGG16 / VGG19 with SE after every convolution.

The paper (section 5, "SE blocks used alone in standard architectures like VGGNet") inserts
an SE block after the non-linearity that follows each convolution: 13 blocks in VGG-16, 16 in
VGG-19. Layers are named as in `keras.applications.VGG16` (`block1_conv1`, `block1_pool`,
`fc1`, ...) with the SE blocks as `block1_conv1_se`, so `se_ratio=None` builds exactly the
keras network and `weights="imagenet_base"` copies keras' ImageNet weights by layer name.

The paper's SE-VGG-16 adds BatchNorm after each convolution (its VGG-16 baseline trains
from scratch with BN): `batch_norm=True` gives conv (with bias, as torchvision's `vgg16_bn`)
-> BatchNorm (`block1_conv1_bn`) -> ReLU (`block1_conv1_relu`) -> SE. keras' VGGs have no
BatchNorm, so their ImageNet weights are only offered for `batch_norm=False`.

Training from scratch: without BatchNorm nothing restores the scale that each gate (about 0.5
at initialisation) takes away, so the 13 gates of SE-VGG-16 shrink a fresh network's outputs
by about 2^-13; use `batch_norm=True` (the paper's choice) or start from `"imagenet_base"`.
"""

import dataclasses

import keras
from keras import layers

from se_keras.applications import _builder, base_weights, imagenet_utils
from se_keras.applications._registry import ModelEntry


@dataclasses.dataclass(frozen=True)
class VGGSpec:
    keras_builder: str  # the keras.applications base network
    convs: tuple  # 3x3 convolutions in block1 .. block5
    widths: tuple = (64, 128, 256, 512, 512)
    fc_units: int = 4096  # fc1, fc2


def _conv(x, filters, name, batch_norm, se):
    if batch_norm:
        x = layers.Conv2D(filters, 3, padding="same", name=name)(x)
        x = layers.BatchNormalization(
            axis=_builder.channel_axis(),
            epsilon=_builder.BN_EPSILON,
            momentum=_builder.BN_MOMENTUM,
            name=f"{name}_bn",
        )(x)
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    else:  # keras' layer: the ReLU fused into the convolution
        x = layers.Conv2D(filters, 3, activation="relu", padding="same", name=name)(x)
    return _builder.squeeze_excite(x, se, f"{name}_se")


def head(x, spec, args):
    if not args.include_top:
        return _builder.default_head(x, spec, args)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(spec.fc_units, activation="relu", name="fc1")(x)
    x = layers.Dense(spec.fc_units, activation="relu", name="fc2")(x)
    return layers.Dense(args.classes, activation=args.classifier_activation, name="predictions")(x)


def check(spec, args):
    if not isinstance(args.batch_norm, bool):
        raise ValueError(
            f"Invalid value for argument `batch_norm`: expected True or False. "
            f"Received: batch_norm={args.batch_norm!r}"
        )
    if args.batch_norm and args.weights == base_weights.BASE_TAG:
        raise ValueError(
            f'`weights="{base_weights.BASE_TAG}"` copies keras.applications\' VGG, which has no '
            "BatchNorm; use batch_norm=False with it. Received: batch_norm=True"
        )


def body(inputs, spec, args):
    x = inputs
    for block, (convs, filters) in enumerate(zip(spec.convs, spec.widths), start=1):
        for index in range(1, convs + 1):
            x = _conv(x, filters, f"block{block}_conv{index}", args.batch_norm, args.se)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    return x


def base(spec, args, input_shape):
    def build():  # looked up at call time, so that tests can replace the download
        return getattr(keras.applications, spec.keras_builder)(
            include_top=args.include_top,
            weights="imagenet",
            input_shape=input_shape,
            classes=args.classes,
        )

    return build


_DOC = """Instantiates the {title} architecture (Simonyan & Zisserman 2015 with SE, Hu et al.
    2018).

    Mirrors `keras.applications.{keras_name}` (same arguments, order, defaults and layer
    names, except `weights=None`: no SE-VGG weights were released), with SE after the ReLU
    of each of its {blocks} convolutions (`block1_conv1_se`, ...). The paper's SE-VGG-16
    (with BatchNorm, `batch_norm=True`): 25.22% / 7.70% top-1 / top-5 error at 15.48
    GFLOPs, against 27.02% / 8.81% at 15.47 GFLOPs for VGG-16 (BN).

    Args:
        include_top: whether to include the 3 fully-connected layers at the top.
        weights: `None` (random initialisation), `"imagenet_base"` (keras.applications'
            ImageNet weights in every non-SE layer, SE blocks at their initialisers; only
            with `batch_norm=False`) or the path to a Keras weights file of this network.
        input_tensor: optional Keras tensor to use as the model's input.
        input_shape: optional shape tuple, only with `include_top=False` (else
            `(224, 224, 3)`); at least 32x32.
        pooling: `None`, `"avg"` or `"max"` pooling of the features when `include_top=False`.
        classes: number of classes when `include_top=True` (1000 with `"imagenet_base"`).
        classifier_activation: activation of the top layer (`None` returns logits).
        name: the model's name.
        se_ratio: SE reduction ratio r (default 16); `None` builds the plain network.
        batch_norm: BatchNorm after each convolution, before its ReLU (the paper's
            SE-VGG-16); default False (keras' VGG).
        se_options: extra `SqueezeExcite` arguments, e.g. `{{"use_bias": False}}`.

    Input: RGB images preprocessed with `se_keras.applications.se_vgg.preprocess_input`
    (keras' "caffe" mode: BGR, ImageNet mean subtracted, not scaled).

    Returns:
        A `keras.Model`.
    """


MODELS = (
    ModelEntry(
        "se_vgg16",
        "SEVGG16",
        VGGSpec("VGG16", (2, 2, 3, 3, 3)),
        224,
        32,
        512,
        138_588_336,
        15_497_585_664,
        "15.48G (with BN)",
        imagenet_base=True,
    ),
    ModelEntry(
        "se_vgg19",
        "SEVGG19",
        VGGSpec("VGG19", (2, 2, 4, 4, 4)),
        224,
        32,
        512,
        143_973_120,
        19_662_066_688,
        imagenet_base=True,
    ),
)

FAMILY = _builder.Family(MODELS, body, check=check, head=head, base=base)
_SE_ARGUMENTS = {"se_ratio": 16, "batch_norm": False, "se_options": None}


def _public_builder(model_name, title):
    spec = FAMILY.entry(model_name).spec
    doc = _DOC.format(title=title, keras_name=spec.keras_builder, blocks=sum(spec.convs))
    return FAMILY.public_builder(model_name, doc, _builder.keras_arguments(), _SE_ARGUMENTS)


SEVGG16 = _public_builder("se_vgg16", "SE-VGG-16")
SEVGG19 = _public_builder("se_vgg19", "SE-VGG-19")

PREPROCESS_MODE = "caffe"  # what `preprocess_input` does, for tf.data pipelines


def preprocess_input(x, data_format=None):
    """RGB images in [0, 255] -> BGR minus the ImageNet mean: keras' VGG preprocessing."""
    return keras.applications.vgg16.preprocess_input(x, data_format=data_format)


decode_predictions = imagenet_utils.decode_predictions
