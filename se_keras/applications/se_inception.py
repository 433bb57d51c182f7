"""SE-Inception-v3, SE-Inception-ResNet-v2 and SE-BN-Inception (Hu et al. 2018, section 3).

Every network is an `InceptionSpec`: a sequence of convolution units, pools, Inception modules
(parallel branches joined by a concatenation) and Inception-ResNet blocks, read by one builder.
SE sits on the output of every Inception module (after the concatenation), and on the
residual branch of every Inception-ResNet block (after the 1x1 up-projection, before the
scaled addition); none in the stems.

- `SEInceptionV3` and `SEInceptionResNetV2` are keras.applications' `InceptionV3` and
  `InceptionResNetV2` layer for layer: with `se_ratio=None` the same parameters, outputs and
  layer names (keras.applications leaves most layers auto-named: ours carry the names a fresh
  Keras session gives them, `conv2d_17`, deterministically). keras' `CustomScaleLayer`
  (`x + scale * r`) is a `Rescaling` and an `Add` here, bit for bit the same.
- `SEBNInception` is the authors' released SE-BN-Inception (`models/SE-BN-Inception.prototxt`
  in hujie-frank/SENet), with Caffe's semantics: BatchNorm with scale and epsilon 1e-5,
  symmetric padding of stride-2 convolutions, ceil-mode 3x3/2 max pools, average pools that
  count their zero padding, SE convolutions with bias. Layer names are the prototxt's with
  `/` as `_` (`inception_3a_double3x3a`, `..._bn`, `..._relu`; SE: `inception_3a_se`).
"""

import collections
import dataclasses

import keras
from keras import layers

from se_keras.applications import _builder, imagenet_utils
from se_keras.applications._registry import ModelEntry


@dataclasses.dataclass(frozen=True)
class Conv:
    """Convolution (no bias) + BatchNorm + ReLU. `padding`: "same", "valid" or "pad"
    (`k // 2` zeros on every side, as Caffe pads; Keras' "same" pads stride 2 asymmetrically).
    Unnamed units get keras' automatic names (`conv2d_3`, `batch_normalization_3`, ...)."""

    filters: int
    kernel: tuple
    strides: int = 1
    padding: str = "same"
    name: str = None

    def apply(self, x, net, prefix=""):
        return net.conv(x, self, prefix)


@dataclasses.dataclass(frozen=True)
class Pool:
    """3x3 pooling. `padding`: "same", "valid", "ceil" (Caffe's ceil-mode 3x3/2 max pool) or
    "pad" (one zero on every side, as Caffe pads: its average pooling counts the zeros)."""

    kind: str  # "avg" or "max"
    strides: int = 1
    padding: str = "same"
    name: str = None

    def apply(self, x, net, prefix=""):
        return net.pool(x, self, prefix)


@dataclasses.dataclass(frozen=True)
class Split:
    """Parallel convolutions on one tensor, concatenated (Inception-v3's 1x3 / 3x1 pairs)."""

    convs: tuple
    name: str = None

    def apply(self, x, net, prefix=""):
        return net.concat([conv.apply(x, net, prefix) for conv in self.convs], self.name)


@dataclasses.dataclass(frozen=True)
class Module:
    """An Inception module: branches (sequences of steps) concatenated as `name + concat`,
    then SE (`name_se`) when `se`. Named steps are called `name_<step name>`."""

    name: str
    branches: tuple
    se: bool = True
    concat: str = ""

    def apply(self, x, net, prefix=""):
        outputs = [net.branch(x, branch, self.name) for branch in self.branches]
        x = net.concat(outputs, self.name + self.concat)
        return net.squeeze_excite(x, self.name) if self.se else x


@dataclasses.dataclass(frozen=True)
class Residual:
    """`count` Inception-ResNet blocks `name_1 ..`: x + scale * SE(up(concat(branches))),
    then ReLU. With `linear_last` the last block has scale 1 and no ReLU (keras' block8_10)."""

    name: str
    branches: tuple
    count: int
    scale: float
    linear_last: bool = False

    def apply(self, x, net, prefix=""):
        for index in range(1, self.count + 1):
            linear = self.linear_last and index == self.count
            x = net.residual(x, self, f"{self.name}_{index}", 1.0 if linear else self.scale, linear)
        return x


@dataclasses.dataclass(frozen=True)
class InceptionSpec:
    body: tuple  # steps, modules and residual blocks, input to features
    bn_scale: bool = False  # keras.applications' Inceptions have no BatchNorm gamma
    bn_epsilon: float = 1e-3
    bn_momentum: float = 0.99
    act_suffix: str = "_ac"  # name of a named unit's ReLU: `name + act_suffix`
    base: str = None  # keras.applications builder serving weights="imagenet_base"
    # Input sides that build, as (modulus, first, last): sides n with n % modulus in
    # first..last (cyclically); empty: any side >= the registry's min_size.
    sides: tuple = ()

    def check_sides(self, shape, model_name):
        if not self.sides:
            return
        modulus, first, last = self.sides
        spatial = shape[1:] if keras.config.image_data_format() == "channels_first" else shape[:2]
        if all(n is None or (n - first) % modulus <= last - first for n in spatial):
            return
        examples = ", ".join(f"{modulus * k + first}-{modulus * k + last}" for k in (4, 7, 8))
        raise ValueError(
            f"{model_name} builds only from input sides n with n mod {modulus} in "
            f"{first % modulus}..{last % modulus} (cyclically; e.g. {examples}): its two "
            "stride-2 modules concatenate a ceil-mode pool with stride-2 convolutions, which "
            f"agree only there, as in the authors' Caffe network. Received: input_shape={shape}"
        )


def _c(filters, rows, cols=None, strides=1, padding="same", name=None):
    return Conv(filters, (rows, cols or rows), strides, padding, name)


AVG = Pool("avg")
MAX_S2 = Pool("max", 2, "valid")
# The stem of both keras networks: 299 -> 35x35x192.
KERAS_STEM = (
    _c(32, 3, strides=2, padding="valid"),
    _c(32, 3, padding="valid"),
    _c(64, 3),
    MAX_S2,
    _c(80, 1, padding="valid"),
    _c(192, 3, padding="valid"),
    MAX_S2,
)


# Inception-v3 (keras.applications.inception_v3; Szegedy et al. 2016, figures 5-7).
def _v3_a(name, pool_filters):
    return Module(
        name,
        (
            (_c(64, 1),),
            (_c(48, 1), _c(64, 5)),
            (_c(64, 1), _c(96, 3), _c(96, 3)),
            (AVG, _c(pool_filters, 1)),
        ),
    )


def _v3_b(name, c7):
    return Module(
        name,
        (
            (_c(192, 1),),
            (_c(c7, 1), _c(c7, 1, 7), _c(192, 7, 1)),
            (_c(c7, 1), _c(c7, 7, 1), _c(c7, 1, 7), _c(c7, 7, 1), _c(192, 1, 7)),
            (AVG, _c(192, 1)),
        ),
    )


def _v3_c(name, index):
    return Module(
        name,
        (
            (_c(320, 1),),
            (_c(384, 1), Split((_c(384, 1, 3), _c(384, 3, 1)), f"mixed9_{index}")),
            (_c(448, 1), _c(384, 3), Split((_c(384, 1, 3), _c(384, 3, 1)))),
            (AVG, _c(192, 1)),
        ),
    )


_S2 = dict(strides=2, padding="valid")
INCEPTION_V3 = InceptionSpec(
    KERAS_STEM
    + (
        _v3_a("mixed0", 32),
        _v3_a("mixed1", 64),
        _v3_a("mixed2", 64),
        Module(
            "mixed3", ((_c(384, 3, **_S2),), (_c(64, 1), _c(96, 3), _c(96, 3, **_S2)), (MAX_S2,))
        ),
        _v3_b("mixed4", 128),
        _v3_b("mixed5", 160),
        _v3_b("mixed6", 160),
        _v3_b("mixed7", 192),
        Module(
            "mixed8",
            (
                (_c(192, 1), _c(320, 3, **_S2)),
                (_c(192, 1), _c(192, 1, 7), _c(192, 7, 1), _c(192, 3, **_S2)),
                (MAX_S2,),
            ),
        ),
        _v3_c("mixed9", 0),
        _v3_c("mixed10", 1),
    ),
    base="InceptionV3",
)

# Inception-ResNet-v2 (keras.applications.inception_resnet_v2; Szegedy et al. 2017).
INCEPTION_RESNET_V2 = InceptionSpec(
    KERAS_STEM
    + (
        Module(
            "mixed_5b",
            (
                (_c(96, 1),),
                (_c(48, 1), _c(64, 5)),
                (_c(64, 1), _c(96, 3), _c(96, 3)),
                (AVG, _c(64, 1)),
            ),
            se=False,
        ),
        Residual(
            "block35",
            ((_c(32, 1),), (_c(32, 1), _c(32, 3)), (_c(32, 1), _c(48, 3), _c(64, 3))),
            count=10,
            scale=0.17,
        ),
        Module(
            "mixed_6a",
            (
                (_c(384, 3, **_S2),),
                (_c(256, 1), _c(256, 3), _c(384, 3, **_S2)),
                (MAX_S2,),
            ),
            se=False,
        ),
        Residual(
            "block17",
            ((_c(192, 1),), (_c(128, 1), _c(160, 1, 7), _c(192, 7, 1))),
            count=20,
            scale=0.1,
        ),
        Module(
            "mixed_7a",
            (
                (_c(256, 1), _c(384, 3, **_S2)),
                (_c(256, 1), _c(288, 3, **_S2)),
                (_c(256, 1), _c(288, 3), _c(320, 3, **_S2)),
                (MAX_S2,),
            ),
            se=False,
        ),
        Residual(
            "block8",
            ((_c(192, 1),), (_c(192, 1), _c(224, 1, 3), _c(256, 3, 1))),
            count=10,
            scale=0.2,
            linear_last=True,
        ),
        _c(1536, 1, name="conv_7b"),
    ),
    base="InceptionResNetV2",
)


# BN-Inception (Ioffe & Szegedy 2015) as in the authors' SE-BN-Inception.prototxt.
def _bn_module(name, c1, c3r, c3, cdr, cd, pool="avg", proj=0):
    """A stride-1 module (pool: "avg" or "max", then a 1x1 projection); `c1=0` makes the
    stride-2 reduction module: no 1x1 branch, stride 2 on the last 3x3s, a 3x3/2 max pool."""
    stride = 1 if c1 else 2
    branches = (
        (_c(c3r, 1, name="3x3_reduce"), _c(c3, 3, strides=stride, padding="pad", name="3x3")),
        (
            _c(cdr, 1, name="double3x3_reduce"),
            _c(cd, 3, name="double3x3a"),
            _c(cd, 3, strides=stride, padding="pad", name="double3x3b"),
        ),
    )
    if stride == 2:
        return Module(
            name, branches + ((Pool("max", 2, "ceil", name="pool_3x3_s2"),),), concat="_concat"
        )
    return Module(
        name,
        ((_c(c1, 1, name="1x1"),),)
        + branches
        + ((Pool(pool, 1, "pad", name="pool"), _c(proj, 1, name="pool_proj")),),
        concat="_concat",
    )


BN_INCEPTION = InceptionSpec(
    (
        _c(64, 7, strides=2, padding="pad", name="conv1_7x7_s2"),
        Pool("max", 2, "ceil", name="pool1_3x3_s2"),
        _c(64, 1, name="conv2_3x3_reduce"),
        _c(192, 3, name="conv2_3x3"),
        Pool("max", 2, "ceil", name="pool2_3x3_s2"),
        _bn_module("inception_3a", 64, 64, 64, 64, 96, proj=32),
        _bn_module("inception_3b", 64, 64, 96, 64, 96, proj=64),
        _bn_module("inception_3c", 0, 128, 160, 64, 96),
        _bn_module("inception_4a", 224, 64, 96, 96, 128, proj=128),
        _bn_module("inception_4b", 192, 96, 128, 96, 128, proj=128),
        _bn_module("inception_4c", 160, 128, 160, 128, 160, proj=128),
        _bn_module("inception_4d", 96, 128, 192, 160, 192, proj=128),
        _bn_module("inception_4e", 0, 128, 192, 192, 256),
        _bn_module("inception_5a", 352, 192, 320, 160, 224, proj=128),
        _bn_module("inception_5b", 352, 192, 320, 192, 224, pool="max", proj=128),
    ),
    bn_scale=True,
    # Both stride-2 modules need an even input: 224 -> 28 -> 14 -> 7, but 123 -> 15.
    sides=(32, -1, 6),
    bn_epsilon=_builder.BN_EPSILON,
    bn_momentum=_builder.BN_MOMENTUM,
    act_suffix="_relu",
)


class _Network:
    """Builds the layers of one spec: naming, BatchNorm settings and SE options."""

    def __init__(self, spec, se, taken=()):
        self.spec, self.se = spec, se
        self.axis = _builder.channel_axis()
        self.counts = collections.Counter()
        self.taken = set(taken)  # names already in the graph of a user's `input_tensor`

    def name(self, kind, given=None, suffix=""):
        """`given + suffix`, or the name a fresh Keras session gives the next unnamed `kind`
        layer (`conv2d`, `conv2d_1`, ...), which is how keras.applications' layers are named."""
        if given:
            return given + suffix
        while True:  # skipping names the input's own layers took, as Keras' counter would
            index, self.counts[kind] = self.counts[kind], self.counts[kind] + 1
            name = f"{kind}_{index}" if index else kind
            if name not in self.taken:
                return name

    def zero_pad(self, x, padding, name):
        return layers.ZeroPadding2D(padding, name=self.name("zero_padding2d", name, "_pad"))(x)

    def conv(self, x, step, prefix=""):
        name = step.name and "_".join(filter(None, (prefix, step.name)))
        padding = step.padding
        if padding == "pad":  # k // 2 on every side; for stride 1 that is what "same" does
            padding = "same"
            if step.strides > 1:
                x = self.zero_pad(x, tuple(k // 2 for k in step.kernel), name)
                padding = "valid"
        x = layers.Conv2D(
            step.filters,
            step.kernel,
            strides=step.strides,
            padding=padding,
            use_bias=False,
            name=self.name("conv2d", name),
        )(x)
        x = layers.BatchNormalization(
            axis=self.axis,
            scale=self.spec.bn_scale,
            epsilon=self.spec.bn_epsilon,
            momentum=self.spec.bn_momentum,
            name=self.name("batch_normalization", name, "_bn"),
        )(x)
        act = self.name("activation", name, self.spec.act_suffix)
        return layers.Activation("relu", name=act)(x)

    def pool(self, x, step, prefix=""):
        name = step.name and "_".join(filter(None, (prefix, step.name)))
        padding = step.padding
        if padding in ("ceil", "pad"):
            # "ceil": Caffe's ceil-mode 3x3/2 pool is one zero row and column at the end +
            # "valid", for every input size. "pad": one zero on every side + "valid"; Caffe's
            # average pooling divides by 9 at the borders too (it counts the padding). For max
            # pooling, zeros never win: the inputs are >= 0 (post-ReLU, or that scaled by SE).
            x = self.zero_pad(x, ((0, 1), (0, 1)) if padding == "ceil" else 1, name)
            padding = "valid"
        pool_class, kind = {
            "avg": (layers.AveragePooling2D, "average_pooling2d"),
            "max": (layers.MaxPooling2D, "max_pooling2d"),
        }[step.kind]
        return pool_class(3, strides=step.strides, padding=padding, name=self.name(kind, name))(x)

    def branch(self, x, steps, prefix):
        for step in steps:
            x = step.apply(x, self, prefix)
        return x

    def concat(self, tensors, name=None):
        return layers.Concatenate(axis=self.axis, name=self.name("concatenate", name))(tensors)

    def squeeze_excite(self, x, name):
        return _builder.squeeze_excite(x, self.se, f"{name}_se")

    def residual(self, x, block, name, scale, linear):
        mixed = self.concat([self.branch(x, b, name) for b in block.branches], f"{name}_mixed")
        up = layers.Conv2D(x.shape[self.axis], 1, use_bias=True, name=f"{name}_conv")(mixed)
        up = self.squeeze_excite(up, name)
        # keras' CustomScaleLayer computes x + r * scale; Rescaling gives r * scale + 0.0,
        # which is exactly r * scale, so the sum is bit-identical, without a custom layer.
        up = layers.Rescaling(scale, name=f"{name}_scale")(up)
        x = layers.Add(name=f"{name}_add")([x, up])
        return x if linear else layers.Activation("relu", name=f"{name}_ac")(x)


def body(inputs, spec, args):
    spec.check_sides(tuple(inputs.shape[1:]), args.model_name)
    return _Network(spec, args.se, _layer_names(inputs)).branch(inputs, spec.body, "")


def _layer_names(tensor):
    """Names of the layers that compute `tensor` (none for a model's own input)."""
    sources = keras.utils.get_source_inputs(tensor)
    if any(source is tensor for source in sources):
        return set()
    return {layer.name for layer in keras.Model(sources, tensor).layers}


def base(spec, args, input_shape):
    if spec.base is None:
        return None

    def build():  # the keras.applications network with its ImageNet weights
        return getattr(keras.applications, spec.base)(
            weights="imagenet",
            include_top=args.include_top,
            input_shape=input_shape,
            classes=args.classes,
        )

    return build


_DOC = """Instantiates the {title} architecture (Hu et al. 2018).

    {summary}

    Arguments, checks and errors follow keras.applications (`keras.applications.{keras_name}`),
    except that `weights` defaults to `None`: no SE ImageNet weights were released.

    Args:
        include_top: whether to include the fully-connected classifier.
        weights: `None` (random initialisation), {tags}or the path to a
            Keras weights file (`.weights.h5`) of this network.
        input_tensor: optional Keras tensor to use as the model's input.
        input_shape: optional shape tuple, only with `include_top=False` (else
            `({size}, {size}, 3)`); at least {min_size}x{min_size}.
        pooling: `None`, `"avg"` or `"max"` pooling of the features when `include_top=False`.
        classes: number of classes when `include_top=True`.
        classifier_activation: activation of the top layer (`None` returns logits).
        name: the model's name.
        se_ratio: SE reduction ratio r (default 16); `None` builds the plain network.
        se_options: extra `SqueezeExcite` arguments, e.g. `{{"pooling": "max"}}`.

    Input: RGB images preprocessed with `se_keras.applications.se_inception.preprocess_input`
    (pixels scaled to [-1, 1]).

    Returns:
        A `keras.Model`.
    """

_BASE_TAG_DOC = (
    '`"imagenet_base"` (the keras.applications base network\'s ImageNet\n'
    "            weights, SE blocks at their initialisers), "
)


MODELS = (
    ModelEntry(
        "se_inception_v3",
        "SEInceptionV3",
        INCEPTION_V3,
        299,
        75,
        2048,
        25_478_972,
        5_719_813_088,
        imagenet_base=True,
    ),
    # (*) The paper's Inception-ResNet-v2 is the authors' re-implementation; keras' is larger.
    ModelEntry(
        "se_inception_resnet_v2",
        "SEInceptionResNetV2",
        INCEPTION_RESNET_V2,
        299,
        75,
        1536,
        64_357_172,
        13_187_369_056,
        "11.76G*",
        imagenet_base=True,
    ),
    ModelEntry(
        "se_bn_inception",
        "SEBNInception",
        BN_INCEPTION,
        224,
        32,
        1024,
        11_931_622,
        2_035_600_832,
        "2.04G",
    ),
)

FAMILY = _builder.Family(MODELS, body, base=base, base_match="structure")


def _public_builder(model_name, title, summary, keras_name):
    entry = FAMILY.entry(model_name)
    doc = _DOC.format(
        title=title,
        summary=summary,
        keras_name=keras_name,
        tags=_BASE_TAG_DOC if entry.spec.base else "",
        size=entry.default_size,
        min_size=entry.min_size,
    )
    return FAMILY.public_builder(model_name, doc, _builder.keras_arguments())


SEInceptionV3 = _public_builder(
    "se_inception_v3",
    "SE-Inception-v3",
    "keras.applications' InceptionV3 with SE on the output of each of its 11 Inception "
    "modules (`mixed0_se` .. `mixed10_se`).",
    "InceptionV3",
)
SEInceptionResNetV2 = _public_builder(
    "se_inception_resnet_v2",
    "SE-Inception-ResNet-v2",
    "keras.applications' InceptionResNetV2 with SE on the residual branch of each of its 40 "
    "Inception-ResNet blocks, before the scaled addition (`block35_1_se` ..).",
    "InceptionResNetV2",
)
SEBNInception = _public_builder(
    "se_bn_inception",
    "SE-BN-Inception",
    "The authors' released SE-BN-Inception (Caffe prototxt, 11,931,622 parameters): "
    "BN-Inception with SE on the output of modules 3a to 5b (`inception_3a_se` ..), none in "
    "the stem; 224x224 input.",
    "InceptionV3",
)


PREPROCESS_MODE = "tf"  # what `preprocess_input` does, for tf.data pipelines


def preprocess_input(x, data_format=None):
    """RGB images in [0, 255] -> [-1, 1] (`x / 127.5 - 1`), as keras' Inception models."""
    return keras.applications.imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


decode_predictions = imagenet_utils.decode_predictions
