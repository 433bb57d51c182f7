"""SE-ResNet (18-152), SE-ResNeXt (32x4d) and SENet-154, as released by the SENet authors.

Every network is a `ResNetSpec` read by one unit builder. Layer names follow
keras.applications (`conv2_block1_1_conv`, ...) and map one to one onto the authors' PyTorch
port (`layer1.0.conv1`, ...), which is how checkpoints are converted.

Caffe compatibility (the released weights were trained in Caffe): stride-2 convolutions pad
symmetrically, the stem max pool is Caffe's ceil-mode 3x3/2, BatchNorm epsilon is 1e-5 and the
SE layers have biases.
"""

import dataclasses
import re

from keras import layers

from se_keras.applications import _builder, imagenet_utils
from se_keras.applications._registry import ModelEntry
from se_keras.utils.validation import check_choice
from se_keras.weights import IMAGENET, weights_info

STAGE_WIDTHS = (64, 128, 256, 512)  # base width of conv2_x .. conv5_x
SE_POSITIONS = ("standard", "pre", "post", "identity")  # also searched by se_keras.tuning
# The paper's other placement (section 6.5, 22.48% top-1 at 25.8M parameters for
# SE-ResNet-50): SE inside the unit, on the 3x3 convolution's output.
SE_INSIDE = "3x3"


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
    blocks: tuple  # residual units in conv2_x .. conv5_x
    bottleneck: bool = True  # 1x1-3x3-1x1 (expansion 4) or the basic 3x3-3x3 unit
    groups: int = 1  # groups of the 3x3 convolution (ResNeXt cardinality)
    inner: tuple = (1, 1)  # widths of the first 1x1 and of the 3x3, in stage base widths
    stride_on_3x3: bool = False  # SE-ResNet strides its first 1x1 (Caffe); ResNeXt the 3x3
    deep_stem: bool = False  # three 3x3 convolutions (64, 64, 128) instead of one 7x7
    shortcut_kernel: int = 1  # projection shortcut kernel from conv3_x on
    dropout: float = 0.0  # before the classifier

    @property
    def expansion(self):
        return 4 if self.bottleneck else 1


conv_bn = _builder.conv_bn


def stem(x, spec):
    if spec.deep_stem:
        for i, (filters, stride) in enumerate(((64, 2), (64, 1), (128, 1)), start=1):
            x = conv_bn(x, filters, 3, f"conv1_{i}", stride=stride)
    else:
        x = conv_bn(x, 64, 7, "conv1", stride=2)
    # Caffe's ceil-mode 3x3/2 pool (112 -> 56). Padding one zero row and column at the end
    # and pooling "valid" gives ceil mode for every input size, and zeros never win the max
    # because the input is post-ReLU (>= 0).
    x = layers.ZeroPadding2D(((0, 1), (0, 1)), name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def residual_unit(x, spec, width, stride, shortcut_kernel, se, name):
    """One residual unit; `se` is None or (SqueezeExcite kwargs, position)."""
    out_channels = width * spec.expansion
    options, position = se or (None, None)

    def squeeze(tensor):
        return _builder.squeeze_excite(tensor, options, f"{name}_se")

    branch = squeeze(x) if position == "pre" else x
    if spec.bottleneck:
        w1, w3 = (width * m for m in spec.inner)
        s1, s3 = (1, stride) if spec.stride_on_3x3 else (stride, 1)
        branch = conv_bn(branch, w1, 1, f"{name}_1", stride=s1)
        branch = conv_bn(branch, w3, 3, f"{name}_2", stride=s3, groups=spec.groups)
        branch = squeeze(branch) if position == SE_INSIDE else branch
        branch = conv_bn(branch, out_channels, 1, f"{name}_3", relu=False)
    else:
        branch = conv_bn(branch, width, 3, f"{name}_1", stride=stride)
        branch = squeeze(branch) if position == SE_INSIDE else branch  # the first 3x3
        # The released SE-ResNet-18/34 (timm's legacy senet.py) apply a ReLU before SE.
        relu = position == "standard"
        branch = conv_bn(branch, width, 3, f"{name}_2", groups=spec.groups, relu=relu)
    if position == "standard":
        branch = squeeze(branch)

    shortcut = x
    if stride != 1 or x.shape[_builder.channel_axis()] != out_channels:
        kernel = shortcut_kernel if stride > 1 else 1
        shortcut = conv_bn(x, out_channels, kernel, f"{name}_0", stride=stride, relu=False)
    if position == "identity":
        shortcut = squeeze(shortcut)

    x = layers.Add(name=f"{name}_add")([shortcut, branch])
    x = layers.Activation("relu", name=f"{name}_out")(x)
    return squeeze(x) if position == "post" else x


def check(spec, args):
    """The SE ablation arguments (the rest is `_builder.Family.build`'s)."""
    stages = args.se_stages
    if not (isinstance(stages, (list, tuple, set, range)) and set(stages) <= {2, 3, 4, 5}):
        raise ValueError(
            "Invalid value for argument `se_stages`: expected stage numbers among 2, 3, 4, 5 "
            f"(conv2_x .. conv5_x). Received: se_stages={stages!r}"
        )
    check_choice("se_position", args.se_position, SE_POSITIONS + (SE_INSIDE,))


def body(inputs, spec, args):
    x = stem(inputs, spec)
    for stage, (blocks, width) in enumerate(zip(spec.blocks, STAGE_WIDTHS), start=2):
        se = (
            (args.se, args.se_position) if args.se is not None and stage in args.se_stages else None
        )
        for block in range(1, blocks + 1):
            stride = 2 if stage > 2 and block == 1 else 1
            kernel = spec.shortcut_kernel if stage > 2 else 1
            x = residual_unit(x, spec, width, stride, kernel, se, f"conv{stage}_block{block}")
    return x


_BLOCK = re.compile(r"conv(\d)_block(\d+)_(?:(\d)_(conv|bn)|(se))$")
_STEM = re.compile(r"conv1(?:_(\d))?_(conv|bn)$")
_SHORTCUT = {"conv": "downsample.0", "bn": "downsample.1"}


def torch_name(spec, layer_name):
    """Prefix of a layer's tensors in the authors' PyTorch state dict (None: no tensors);
    the same for every spec."""
    if layer_name == "predictions":
        return "last_linear"
    if match := _STEM.match(layer_name):
        index, kind = match.groups()
        return f"layer0.{kind}{index or 1}"
    if match := _BLOCK.match(layer_name):
        stage, block, index, kind, se = match.groups()
        prefix = f"layer{int(stage) - 1}.{int(block) - 1}"
        if se:
            return f"{prefix}.se_module"
        return f"{prefix}.{_SHORTCUT[kind] if index == '0' else kind + index}"
    return None


_DOC = """Instantiates the {title} architecture ({paper}).

    Mirrors `keras.applications.ResNet50`: same arguments, defaults and checks. The extra
    keyword arguments reproduce the paper's ablations.

    Args:
        include_top: whether to include the fully-connected classifier.
        weights: `None` (random initialisation), a registered tag (`"imagenet"`: the
            authors' released weights) or the path to a weights file: a Keras
            `.weights.h5`, or a PyTorch `.pth` / `.safetensors` state dict in the authors'
            layout (Cadene's pretrainedmodels, timm's `legacy_*`), converted by layer name.
        input_tensor: optional Keras tensor to use as the model's input.
        input_shape: optional shape tuple; at least 32x32.
        pooling: `None`, `"avg"` or `"max"` pooling of the features when `include_top=False`.
        classes: number of classes when `include_top=True` (1000 with ImageNet weights).
        classifier_activation: activation of the top layer (`None` returns logits).
        name: the model's name.
        se_ratio: SE reduction ratio r (default 16); `None` builds the plain network.
        se_stages: stages that carry SE, among 2-5 (conv2_x .. conv5_x); default all.
        se_position: where SE sits in each unit: `"standard"` (on the residual branch
            before the addition), `"pre"` (before the unit), `"post"` (after the addition
            and ReLU), `"identity"` (on the shortcut) - the paper's section 6.5 - or
            `"3x3"` (inside the unit, after the 3x3 convolution's BN and ReLU; in the basic
            unit after the first 3x3), the paper's 22.48% top-1 at 25.8M parameters.
        se_options: extra `SqueezeExcite` arguments, e.g. `{{"pooling": "max"}}` or
            `{{"gate": "tanh"}}`; `{{"pooling": None}}` is the paper's "no squeeze"
            (22.93% top-1, 4.27 GFLOPs) and `{{"use_bias": False}}` its ablation setting
            (biases removed in all of section 6; the released models have them).

    Input: RGB images preprocessed with `se_keras.applications.se_resnet.preprocess_input`.

    Returns:
        A `keras.Model`.
    """


_BOTTLENECK = dict(groups=32, inner=(2, 2), stride_on_3x3=True)  # SE-ResNeXt (32x4d)
MODELS = (
    ModelEntry(
        "se_resnet18",
        "SEResNet18",
        ResNetSpec((2, 2, 2, 2), bottleneck=False),
        224,
        32,
        512,
        11_778_592,
        1_815_665_664,
        searched=True,
    ),
    ModelEntry(
        "se_resnet34",
        "SEResNet34",
        ResNetSpec((3, 4, 6, 3), bottleneck=False),
        224,
        32,
        512,
        21_958_868,
        3_666_678_272,
        searched=True,
    ),
    ModelEntry(
        "se_resnet50",
        "SEResNet50",
        ResNetSpec((3, 4, 6, 3)),
        224,
        32,
        2048,
        28_088_024,
        3_871_526_912,
        "3.87G",
        searched=True,
    ),
    ModelEntry(
        "se_resnet101",
        "SEResNet101",
        ResNetSpec((3, 4, 23, 3)),
        224,
        32,
        2048,
        49_326_872,
        7_592_800_256,
        "7.60G",
    ),
    ModelEntry(
        "se_resnet152",
        "SEResNet152",
        ResNetSpec((3, 8, 36, 3)),
        224,
        32,
        2048,
        66_821_848,
        11_315_286_016,
        "11.32G",
    ),
    ModelEntry(
        "se_resnext50",
        "SEResNeXt50",
        ResNetSpec((3, 4, 6, 3), **_BOTTLENECK),
        224,
        32,
        2048,
        27_559_896,
        4_244_033_536,
        "4.25G",
        searched=True,
    ),
    ModelEntry(
        "se_resnext101",
        "SEResNeXt101",
        ResNetSpec((3, 4, 23, 3), **_BOTTLENECK),
        224,
        32,
        2048,
        48_955_416,
        7_992_602_624,
        "8.00G",
    ),
    ModelEntry(
        "senet154",
        "SENet154",
        ResNetSpec(
            (3, 8, 36, 3),
            groups=64,
            inner=(2, 4),
            stride_on_3x3=True,
            deep_stem=True,
            shortcut_kernel=3,
            dropout=0.2,
        ),
        224,
        32,
        2048,
        115_088_984,
        20_714_655_744,
        "20.7G",
    ),
)

FAMILY = _builder.Family(MODELS, body, check=check, torch_names=torch_name)
_ARGUMENTS = _builder.keras_arguments(weights="imagenet")
_SE_ARGUMENTS = {
    "se_ratio": 16,
    "se_stages": (2, 3, 4, 5),
    "se_position": "standard",
    "se_options": None,
}


def _public_builder(model_name, title, paper="SE-ResNet, Hu et al. 2018"):
    doc = _DOC.format(title=title, paper=paper)
    return FAMILY.public_builder(model_name, doc, _ARGUMENTS, _SE_ARGUMENTS)


SEResNet18 = _public_builder("se_resnet18", "SE-ResNet-18")
SEResNet34 = _public_builder("se_resnet34", "SE-ResNet-34")
SEResNet50 = _public_builder("se_resnet50", "SE-ResNet-50")
SEResNet101 = _public_builder("se_resnet101", "SE-ResNet-101")
SEResNet152 = _public_builder("se_resnet152", "SE-ResNet-152")
_RESNEXT = "SE-ResNeXt, Hu et al. 2018"
SEResNeXt50 = _public_builder("se_resnext50", "SE-ResNeXt-50 (32x4d)", _RESNEXT)
SEResNeXt101 = _public_builder("se_resnext101", "SE-ResNeXt-101 (32x4d)", _RESNEXT)
SENet154 = _public_builder("senet154", "SENet-154", "Hu et al. 2018")

# The authors' Caffe weights in Cadene's PyTorch port (timm mirrors the same files); the
# SE-ResNet-18/34 files were trained by timm (legacy senet.py), not released by the authors.
_CADENE = "http://data.lip6.fr/cadene/pretrainedmodels/"
_TIMM = "https://github.com/rwightman/pytorch-image-models/releases/download/"
_AUTHORS = "authors' Caffe weights, PyTorch port (Cadene/pretrained-models.pytorch)"


def _released(model_name, file_name, top1, origins, source=_AUTHORS, preprocessing=None):
    # The published digest prefix is the part of the file name after the last "-".
    return weights_info(
        model_name,
        "imagenet",
        origins,
        file_name[-12:-4],
        top1=top1,
        source=source,
        preprocessing=preprocessing,
    )


def _authors(model_name, file_name, top1):
    origins = (_CADENE + file_name, _TIMM + "v0.1-cadene/" + file_name)
    return _released(model_name, file_name, top1, origins)


WEIGHTS = (
    _authors("se_resnet50", "se_resnet50-ce0d4300.pth", 77.64),
    _authors("se_resnet101", "se_resnet101-7e38fcc6.pth", 78.40),
    _authors("se_resnet152", "se_resnet152-d17c99b7.pth", 78.66),
    _authors("se_resnext50", "se_resnext50_32x4d-a260b3a4.pth", 79.08),
    _authors("se_resnext101", "se_resnext101_32x4d-3b2fe3d8.pth", 80.24),
    _authors("senet154", "senet154-c7b49a05.pth", 81.30),
    _released(
        "se_resnet18",
        "seresnet18-4bb0ce65.pth",
        71.74,
        (_TIMM + "v0.1-weights/seresnet18-4bb0ce65.pth",),
        "timm (legacy_seresnet18)",
        {**IMAGENET, "interpolation": "bicubic"},
    ),
    _released(
        "se_resnet34",
        "seresnet34-a4004e63.pth",
        74.79,
        (_TIMM + "v0.1-weights/seresnet34-a4004e63.pth",),
        "timm (legacy_seresnet34)",
    ),
)

PREPROCESS_MODE = "torch"  # what `preprocess_input` does, for tf.data pipelines
preprocess_input = imagenet_utils.preprocess_input
decode_predictions = imagenet_utils.decode_predictions
