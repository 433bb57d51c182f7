"""timm's SE-ResNet / SE-ResNeXt family (`timm/models/resnet.py`, timm 1.0.31): SE-ResNet-18-152,
the `d` / `t` variants, SE-ResNeXt 26-101, the anti-aliased `aa` ones and timm's SENet-154.

Every network is a `TimmResNetSpec` read by one body. Layer names follow keras.applications
(`conv2_block1_1_conv`, ...) and map one to one onto timm's state dict (`layer1.0.conv1`,
...), which is how timm checkpoints are converted.

How these differ from the authors' networks (`se_resnet.py`): the stride sits on the 3x3
convolution (ResNet-B, "v1.5"); the stem max pool pads 1 instead of Caffe's ceil mode; the SE
width is `make_divisible(C / 16, 8)`; SE follows the last BatchNorm, before the addition.
`d`: a deep stem of three 3x3 convolutions (32-32-64) and an average-pool shortcut; `t`: the
tiered deep stem (24-32-64); `aa`: a stride-2 3x3 runs at stride 1 followed by a 2x2 average
pool, and the stem's max pool is a 2x2 average pool.
"""

import dataclasses
import math
import re

from keras import layers

from se_keras.applications import _builder, _registry, imagenet_utils
from se_keras.applications._registry import ModelEntry, PublishedMacs
from se_keras.weights import IMAGENET, hub, weights_info

STAGE_WIDTHS = (64, 128, 256, 512)  # timm's `channels` ("planes") of layer1 .. layer4
STEM_KINDS = ("", "deep", "deep_tiered")
# timm's SEModule rounds its width with make_divisible(C / 16, 8, round_limit=0.).
SE_DEFAULTS = {"divisor": 8, "round_limit": 0.0}


@dataclasses.dataclass(frozen=True)
class TimmResNetSpec:
    blocks: tuple  # residual units in conv2_x .. conv5_x (timm's `layers`)
    bottleneck: bool = True  # timm's Bottleneck (expansion 4) or BasicBlock
    cardinality: int = 1  # groups of the 3x3 convolution
    base_width: int = 64  # 3x3 width = floor(planes * base_width / 64) * cardinality
    stem: str = ""  # "": one 7x7; "deep": 3x3 convolutions w-w-2w; "deep_tiered": 3w/4-w-2w
    stem_width: int = 64  # w of the deep stems
    avg_down: bool = False  # shortcut = ceil-mode 2x2 average pool, then 1x1 convolution
    aa: bool = False  # anti-aliasing: stride-2 3x3 at stride 1 + 2x2 average pool
    down_kernel_size: int = 1  # kernel of strided convolution shortcuts
    block_reduce_first: int = 1  # first 1x1 (or 3x3) is 1/this of the 3x3 width
    channels: tuple = STAGE_WIDTHS  # timm's `channels`: the planes of conv2_x .. conv5_x

    def __post_init__(self):
        if self.stem not in STEM_KINDS:
            raise ValueError(f"stem must be one of {STEM_KINDS}. Received: stem={self.stem!r}")

    @property
    def expansion(self):
        return 4 if self.bottleneck else 1

    @property
    def se_defaults(self):
        return SE_DEFAULTS


def _resnext(blocks, cardinality, base_width, **kwargs):
    return TimmResNetSpec(blocks, cardinality=cardinality, base_width=base_width, **kwargs)


_D = {"stem": "deep", "stem_width": 32, "avg_down": True}

SPECS = {
    "timm_seresnet18": TimmResNetSpec((2, 2, 2, 2), bottleneck=False),
    "timm_seresnet34": TimmResNetSpec((3, 4, 6, 3), bottleneck=False),
    "timm_seresnet50": TimmResNetSpec((3, 4, 6, 3)),
    "timm_seresnet101": TimmResNetSpec((3, 4, 23, 3)),
    "timm_seresnet152": TimmResNetSpec((3, 8, 36, 3)),
    "timm_seresnet152d": TimmResNetSpec((3, 8, 36, 3), **_D),
    "timm_seresnext26d_32x4d": _resnext((2, 2, 2, 2), 32, 4, **_D),
    "timm_seresnext26t_32x4d": _resnext((2, 2, 2, 2), 32, 4, **{**_D, "stem": "deep_tiered"}),
    "timm_seresnext50_32x4d": _resnext((3, 4, 6, 3), 32, 4),
    "timm_seresnext101_32x4d": _resnext((3, 4, 23, 3), 32, 4),
    "timm_seresnext101_64x4d": _resnext((3, 4, 23, 3), 64, 4),
    "timm_seresnext101_32x8d": _resnext((3, 4, 23, 3), 32, 8),
    "timm_seresnext101d_32x8d": _resnext((3, 4, 23, 3), 32, 8, **_D),
    "timm_seresnextaa101d_32x8d": _resnext((3, 4, 23, 3), 32, 8, aa=True, **_D),
    "timm_seresnextaa201d_32x8d": _resnext(
        (3, 24, 36, 4), 32, 8, aa=True, **{**_D, "stem_width": 64}
    ),
    "timm_senet154": _resnext(
        (3, 8, 36, 3), 64, 4, stem="deep", down_kernel_size=3, block_reduce_first=2
    ),
}

conv_bn = _builder.conv_bn


def _anti_alias_pool(x, name):
    # timm's aa_layer=nn.AvgPool2d: kernel 2, stride 2, no padding (odd sizes round down).
    return layers.AveragePooling2D(2, name=name)(x)


def stem(x, spec):
    if spec.stem:
        first = 3 * (spec.stem_width // 4) if spec.stem == "deep_tiered" else spec.stem_width
        widths = (first, spec.stem_width, 2 * spec.stem_width)
        for i, filters in enumerate(widths, start=1):
            x = conv_bn(x, filters, 3, f"conv1_{i}", stride=2 if i == 1 else 1)
    else:
        x = conv_bn(x, 64, 7, "conv1", stride=2)
    if spec.aa:
        return _anti_alias_pool(x, "pool1_pool")
    # PyTorch's MaxPool2d(3, 2, padding=1) pads with -inf; zeros are the same here because
    # the input is post-ReLU (>= 0).
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def _strided_conv_bn(x, spec, filters, stride, name, groups=1):
    """The unit's (3x3) strided convolution: with anti-aliasing, at stride 1 then pooled."""
    if spec.aa and stride > 1:
        x = conv_bn(x, filters, 3, name, groups=groups)
        return _anti_alias_pool(x, f"{name}_pool")
    return conv_bn(x, filters, 3, name, stride=stride, groups=groups)


def _shortcut(x, spec, out_channels, stride, name):
    if spec.avg_down:
        if stride > 1:
            # AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False): Keras' "same"
            # pads only at the end and leaves the padding out of each average, which is
            # exactly ceil mode without counting padding, for odd and even sizes.
            x = layers.AveragePooling2D(2, strides=stride, padding="same", name=f"{name}_pool")(x)
        return conv_bn(x, out_channels, 1, name, relu=False)
    kernel = spec.down_kernel_size if stride > 1 else 1
    return conv_bn(x, out_channels, kernel, name, stride=stride, relu=False)


def residual_unit(x, spec, planes, stride, se_options, name):
    out_channels = planes * spec.expansion
    if spec.bottleneck:
        width = math.floor(planes * spec.base_width / 64) * spec.cardinality
        branch = conv_bn(x, width // spec.block_reduce_first, 1, f"{name}_1")
        branch = _strided_conv_bn(branch, spec, width, stride, f"{name}_2", spec.cardinality)
        branch = conv_bn(branch, out_channels, 1, f"{name}_3", relu=False)
    else:
        branch = _strided_conv_bn(x, spec, planes // spec.block_reduce_first, stride, f"{name}_1")
        branch = conv_bn(branch, out_channels, 3, f"{name}_2", relu=False)
    # timm: SE on the residual branch after its last BatchNorm, before the addition.
    branch = _builder.squeeze_excite(branch, se_options, f"{name}_se")
    shortcut = x
    if stride != 1 or x.shape[_builder.channel_axis()] != out_channels:
        shortcut = _shortcut(x, spec, out_channels, stride, f"{name}_0")
    x = layers.Add(name=f"{name}_add")([shortcut, branch])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _check_anti_aliased_size(inputs, stem_output):
    """timm's anti-aliased units pool the branch with floor and the shortcut with ceil
    rounding: they agree only where every strided unit's input side is even."""
    sides = _builder.spatial_size(tuple(stem_output.shape[1:]))
    if any(side is not None and side % 8 for side in sides):
        raise ValueError(
            "This anti-aliased network (as timm's) needs an input whose stem output sides "
            "(input side / 4, rounded down) are multiples of 8, e.g. sides that are multiples "
            f"of 32. Received: input_shape={tuple(inputs.shape[1:])}"
        )


def body(inputs, spec, args):
    """The feature tensor (before global pooling) of `spec` on `inputs`."""
    x = stem(inputs, spec)
    if spec.aa:
        _check_anti_aliased_size(inputs, x)
    for stage, (blocks, planes) in enumerate(zip(spec.blocks, spec.channels), start=2):
        for block in range(1, blocks + 1):
            stride = 2 if stage > 2 and block == 1 else 1
            x = residual_unit(x, spec, planes, stride, args.se, f"conv{stage}_block{block}")
    return x


_BLOCK = re.compile(r"conv(\d)_block(\d+)_(?:(\d)_(conv|bn)|(se))$")
_DEEP_STEM = re.compile(r"conv1_(\d)_(conv|bn)$")


def torch_name(spec, layer_name):
    """Prefix of a layer's tensors in timm's state dict (None: no tensors). With
    `spec.avg_down` the shortcut is `downsample.{1,2}` (`downsample.0` is its average pool)."""
    avg_down = spec.avg_down
    if layer_name == "predictions":
        return "fc"
    if layer_name in ("conv1_conv", "conv1_bn", "conv1_3_bn"):
        return "conv1" if layer_name == "conv1_conv" else "bn1"
    if match := _DEEP_STEM.match(layer_name):
        # timm's deep stem is one Sequential: conv, bn, relu, conv, bn, relu, conv.
        index, kind = int(match.group(1)), match.group(2)
        return f"conv1.{3 * (index - 1) + (kind == 'bn')}"
    if match := _BLOCK.match(layer_name):
        stage, block, index, kind, se = match.groups()
        prefix = f"layer{int(stage) - 1}.{int(block) - 1}"
        if se:
            return f"{prefix}.se"
        if index == "0":
            return f"{prefix}.downsample.{(kind == 'bn') + avg_down}"
        return f"{prefix}.{kind}{index}"
    return None


def input_shape(spec, args, entry):
    """With a tag, the input side its top-1 was measured at, or the one it was trained at
    when `input_shape` asks for that; else timm's default for the architecture."""
    size = entry.default_size
    if isinstance(args.weights, str) and args.weights in _registry.tags(entry.name):
        preprocessing = _registry.get_weights(entry.name, args.weights).preprocessing
        sides = (preprocessing["input_size"], preprocessing.get("train_input_size"))
        shape = args.input_shape
        shaped = isinstance(shape, (tuple, list)) and len(shape) == 3
        asked = set(_builder.spatial_size(shape)) if shaped else set()
        size = sides[1] if asked == {sides[1]} else sides[0]
    return _builder.fixed_input_shape(spec, args, entry, default_size=size)


def hub_checkpoint(entry, args):
    """For `weights="hf://owner/name[/file]"`: its `WeightsInfo`, after its config.json
    (timm writes one) showed it is a checkpoint of this architecture."""
    repo, filename = hub.parse(args.weights)
    config = hub.read_config(repo) or {}
    arch = entry.name.removeprefix("timm_")
    if config.get("architecture", arch) != arch:
        supported = ", ".join(sorted(a for a in ALIASES if "/" not in a))
        raise ValueError(
            f"{repo} holds a {config['architecture']!r} checkpoint, and this builder takes "
            f"{arch!r} ones (timm architectures supported: {supported}). "
            f"Received: weights={args.weights!r}"
        )
    classes = config.get("num_classes", args.classes)
    if args.include_top and args.classes != classes:
        raise ValueError(
            f"{repo} classifies {classes} classes; with `include_top=True`, "
            f"`classes` should be {classes}. Received: classes={args.classes}"
        )
    tag = f"{repo}/{filename}".replace("/", "--")  # the converted cache's name
    preprocessing = {**IMAGENET, "interpolation": "bicubic", "num_classes": classes}
    return weights_info(entry.name, tag, f"hf://{repo}/{filename}", None, None, preprocessing)


_DOC = """Instantiates timm's `{timm_name}` architecture (timm 1.0.31, `timm/models/resnet.py`).

    Mirrors `keras.applications.ResNet50`: same arguments, defaults and checks. This is timm's
    network, not the SENet authors' (stride on the 3x3 convolution, padded stem pool, SE width
    rounded to a multiple of 8; see the module's docstring); timm's checkpoints load by name.

    Args:
        include_top: whether to include the fully-connected classifier.
        weights: `None` (random initialisation), a registered tag, a Hugging Face Hub
            checkpoint of this architecture (`"hf://owner/name"`), or the path to a weights
            file: a Keras `.weights.h5`, or a timm state dict (`.pth` / `.safetensors`).
        input_tensor: optional Keras tensor to use as the model's input.
        input_shape: optional shape tuple; at least 32x32.
        pooling: `None`, `"avg"` or `"max"` pooling of the features when `include_top=False`.
        classes: number of classes when `include_top=True`.
        classifier_activation: activation of the top layer (`None` returns logits).
        name: the model's name.
        se_ratio: SE reduction ratio r (default 16); `None` builds the plain network.
        se_options: extra `SqueezeExcite` arguments over timm's defaults
            (`{{"divisor": 8, "round_limit": 0.0}}`); `{{"use_bias": False, "divisor": 1}}`
            is the SE-ResNet of the PyTorch walkthroughs built on torchvision's ResNet
            (SE width `C // 16`, FCs without biases).

    Input: RGB images preprocessed with `se_keras.applications.timm_resnet.preprocess_input`.

    Returns:
        A `keras.Model`.
    """

# timm's default input size where it is not 224 (its default pretrained config's).
DEFAULT_SIZES = {
    "timm_seresnet152d": 256,
    "timm_seresnextaa101d_32x8d": 288,
    "timm_seresnextaa201d_32x8d": 384,
}


def _card(tag, gmacs, size):
    """The "GMACs" of timm's Hugging Face model card `timm/<tag>` ("Model Stats"), given
    at the size the weights were trained at (`size`)."""
    return PublishedMacs(round(gmacs * 1e9), size, f"https://huggingface.co/timm/{tag}")


# The model cards where the figure was found (README "Model Stats"); no figure is recorded
# for the others.
CARD_MACS = {
    "timm_seresnet50": _card("seresnet50.a2_in1k", 4.1, 224),
    "timm_seresnext101d_32x8d": _card("seresnext101d_32x8d.ah_in1k", 16.7, 224),
    "timm_seresnextaa201d_32x8d": _card("seresnextaa201d_32x8d.sw_in12k_ft_in1k_384", 101.1, 384),
}


def _entry(name, function, params, macs):
    spec = SPECS[name]
    features = spec.channels[-1] * spec.expansion
    size = DEFAULT_SIZES.get(name, 224)
    return ModelEntry(
        name, function, spec, size, 32, features, params, macs, published_macs=CARD_MACS.get(name)
    )


MODELS = (
    _entry("timm_seresnet18", "TimmSEResNet18", 11_779_624, 1_815_666_688),
    _entry("timm_seresnet34", "TimmSEResNet34", 21_960_416, 3_666_679_808),
    _entry("timm_seresnet50", "TimmSEResNet50", 28_088_024, 4_102_737_920),
    _entry("timm_seresnet101", "TimmSEResNet101", 49_326_872, 7_824_011_264),
    _entry("timm_seresnet152", "TimmSEResNet152", 66_821_848, 11_546_497_024),
    _entry("timm_seresnet152d", "TimmSEResNet152D", 66_841_080, 15_391_498_240),
    _entry("timm_seresnext26d_32x4d", "TimmSEResNeXt26D_32x4d", 16_809_512, 2_717_761_536),
    _entry("timm_seresnext26t_32x4d", "TimmSEResNeXt26T_32x4d", 16_806_976, 2_686_150_656),
    _entry("timm_seresnext50_32x4d", "TimmSEResNeXt50_32x4d", 27_559_896, 4_244_033_536),
    _entry("timm_seresnext101_32x4d", "TimmSEResNeXt101_32x4d", 48_955_416, 7_992_602_624),
    _entry("timm_seresnext101_64x4d", "TimmSEResNeXt101_64x4d", 88_232_984, 15_482_875_904),
    _entry("timm_seresnext101_32x8d", "TimmSEResNeXt101_32x8d", 93_569_048, 16_436_621_312),
    _entry("timm_seresnext101d_32x8d", "TimmSEResNeXt101D_32x8d", 93_588_280, 16_676_261_888),
    _entry("timm_seresnextaa101d_32x8d", "TimmSEResNeXtAA101D_32x8d", 93_588_280, 28_422_410_240),
    _entry("timm_seresnextaa201d_32x8d", "TimmSEResNeXtAA201D_32x8d", 149_394_904, 100_827_111_424),
    _entry("timm_senet154", "TimmSENet154", 115_088_984, 20_714_655_744),
)

FAMILY = _builder.Family(
    MODELS,
    body,
    input_shape=input_shape,
    torch_names=torch_name,
    hub_checkpoint=hub_checkpoint,
)


def _public_builder(model_name):
    doc = _DOC.format(timm_name=model_name.removeprefix("timm_"))
    return FAMILY.public_builder(model_name, doc, _builder.keras_arguments())


TimmSEResNet18 = _public_builder("timm_seresnet18")
TimmSEResNet34 = _public_builder("timm_seresnet34")
TimmSEResNet50 = _public_builder("timm_seresnet50")
TimmSEResNet101 = _public_builder("timm_seresnet101")
TimmSEResNet152 = _public_builder("timm_seresnet152")
TimmSEResNet152D = _public_builder("timm_seresnet152d")
TimmSEResNeXt26D_32x4d = _public_builder("timm_seresnext26d_32x4d")
TimmSEResNeXt26T_32x4d = _public_builder("timm_seresnext26t_32x4d")
TimmSEResNeXt50_32x4d = _public_builder("timm_seresnext50_32x4d")
TimmSEResNeXt101_32x4d = _public_builder("timm_seresnext101_32x4d")
TimmSEResNeXt101_64x4d = _public_builder("timm_seresnext101_64x4d")
TimmSEResNeXt101_32x8d = _public_builder("timm_seresnext101_32x8d")
TimmSEResNeXt101D_32x8d = _public_builder("timm_seresnext101d_32x8d")
TimmSEResNeXtAA101D_32x8d = _public_builder("timm_seresnextaa101d_32x8d")
TimmSEResNeXtAA201D_32x8d = _public_builder("timm_seresnextaa201d_32x8d")
TimmSENet154 = _public_builder("timm_senet154")


def _hub(arch, tag, top1, size=224, crop=0.875, test_size=None, test_crop=None, classes=1000):
    """timm's `<arch>.<tag>` on the Hub with its pretrained config (timm 1.0.31): trained at
    `size` (crop `crop`), evaluated at `test_size` with `test_crop`, where results-imagenet.csv
    reports `top1`. The preprocessing is the evaluation's (`input_size`, `resize`)."""
    test_size, test_crop = test_size or size, test_crop or crop
    preprocessing = {
        **IMAGENET,
        "input_size": test_size,
        "resize": math.floor(test_size / test_crop),  # timm: floor(size / crop_pct), centre crop
        "interpolation": "bicubic",
        "crop_pct": test_crop,
        "train_input_size": size,
        "train_crop_pct": crop,
        "num_classes": classes,
        "classes": "ImageNet-1k, sorted WNIDs" if classes == 1000 else "ImageNet-12k (timm)",
    }
    return weights_info(
        f"timm_{arch}",
        tag,
        f"hf://timm/{arch}.{tag}",
        None,  # checked against the digest the Hub reports
        file_name=f"{arch}.{tag}.safetensors",
        preprocessing=preprocessing,
        top1=top1,
        source=f"timm (Hugging Face Hub timm/{arch}.{tag}, Apache-2.0)",
    )


_RSB = {"crop": 0.95, "test_size": 288, "test_crop": 1.0}  # timm's "ResNet strikes back" cfg
_TT = {"test_size": 288, "test_crop": 0.95}
_12K = 11_821

WEIGHTS = (
    _hub("seresnet50", "a1_in1k", 81.114, **_RSB),
    _hub("seresnet50", "a2_in1k", 81.094, **_RSB),
    _hub("seresnet50", "a3_in1k", 77.036, 160, 0.95, 224, 0.95),
    _hub("seresnet50", "ra2_in1k", 81.288, **_TT),
    _hub("seresnet152d", "ra2_in1k", 84.344, 256, 0.95, 320, 1.0),
    _hub("seresnext26d_32x4d", "bt_in1k", 78.816, **_TT),
    _hub("seresnext26t_32x4d", "bt_in1k", 78.736, **_TT),
    _hub("seresnext50_32x4d", "racm_in1k", 82.186, **_TT),
    _hub("seresnext50_32x4d", "gluon_in1k", 79.916),
    _hub("seresnext101_32x4d", "gluon_in1k", 80.886),
    _hub("seresnext101_64x4d", "gluon_in1k", 80.884),
    _hub("seresnext101_32x8d", "ah_in1k", 84.192, **_RSB),
    _hub("seresnext101d_32x8d", "ah_in1k", 84.380, **_RSB),
    _hub("seresnextaa101d_32x8d", "ah_in1k", 84.580, **_RSB),
    _hub("seresnextaa101d_32x8d", "sw_in12k", None, 224, 0.95, 288, 1.0, _12K),
    _hub("seresnextaa101d_32x8d", "sw_in12k_ft_in1k", 86.524, 224, 0.875, 288, 1.0),
    _hub("seresnextaa101d_32x8d", "sw_in12k_ft_in1k_288", 86.722, 288, 0.95, 320, 1.0),
    _hub("seresnextaa201d_32x8d", "sw_in12k", None, 320, 0.95, 384, 1.0, _12K),
    _hub("seresnextaa201d_32x8d", "sw_in12k_ft_in1k_384", 87.304, 384, 1.0),
    _hub("senet154", "gluon_in1k", 81.258),
)

# timm's architecture names: get_model("seresnet50"), or "timm/senet154" where the bare name
# is one of the registry's own (the registry's names win).
ALIASES = {
    alias: name
    for name in SPECS
    for alias in (name.removeprefix("timm_"), "timm/" + name.removeprefix("timm_"))
}

PREPROCESS_MODE = "torch"  # ImageNet mean / std on [0, 1] RGB, as timm's configs
preprocess_input = imagenet_utils.preprocess_input
decode_predictions = imagenet_utils.decode_predictions
