"""Model builders mirroring keras.applications, and the registry of them by name."""

from se_keras.applications import (
    _registry,
    se_inception,
    se_mobilenet,
    se_resnet,
    se_shufflenet,
    se_vgg,
    timm_resnet,
)
from se_keras.applications._registry import (
    BASE_TAG,
    ModelEntry,
    aliases,
    builder,
    entry,
    family_module,
    get_model,
    get_weights,
    list_models,
    register_weights,
    tags,
)
from se_keras.applications.se_inception import SEBNInception, SEInceptionResNetV2, SEInceptionV3
from se_keras.applications.se_mobilenet import SEMobileNet, SEMobileNetV2
from se_keras.applications.se_resnet import (
    SENet154,
    SEResNet18,
    SEResNet34,
    SEResNet50,
    SEResNet101,
    SEResNet152,
    SEResNeXt50,
    SEResNeXt101,
)
from se_keras.applications.se_shufflenet import SEShuffleNet, SEShuffleNetV2
from se_keras.applications.se_vgg import SEVGG16, SEVGG19
from se_keras.applications.timm_resnet import (
    TimmSENet154,
    TimmSEResNet18,
    TimmSEResNet34,
    TimmSEResNet50,
    TimmSEResNet101,
    TimmSEResNet152,
    TimmSEResNet152D,
    TimmSEResNeXt26D_32x4d,
    TimmSEResNeXt26T_32x4d,
    TimmSEResNeXt50_32x4d,
    TimmSEResNeXt101_32x4d,
    TimmSEResNeXt101_32x8d,
    TimmSEResNeXt101_64x4d,
    TimmSEResNeXt101D_32x8d,
    TimmSEResNeXtAA101D_32x8d,
    TimmSEResNeXtAA201D_32x8d,
)

# The families: the one place a new family is added (its file declares its models).
FAMILIES = (se_resnet, se_inception, se_mobilenet, se_shufflenet, se_vgg, timm_resnet)
for _family in FAMILIES:
    _registry.add_family(_family)

__all__ = [
    "BASE_TAG",
    "FAMILIES",
    "ModelEntry",
    "SEBNInception",
    "SEInceptionResNetV2",
    "SEInceptionV3",
    "SEMobileNet",
    "SEMobileNetV2",
    "SENet154",
    "SEResNeXt50",
    "SEResNeXt101",
    "SEResNet18",
    "SEResNet34",
    "SEResNet50",
    "SEResNet101",
    "SEResNet152",
    "SEShuffleNet",
    "SEShuffleNetV2",
    "SEVGG16",
    "SEVGG19",
    "builder",
    "TimmSENet154",
    "TimmSEResNeXt101D_32x8d",
    "TimmSEResNeXt101_32x4d",
    "TimmSEResNeXt101_32x8d",
    "TimmSEResNeXt101_64x4d",
    "TimmSEResNeXt26D_32x4d",
    "TimmSEResNeXt26T_32x4d",
    "TimmSEResNeXt50_32x4d",
    "TimmSEResNeXtAA101D_32x8d",
    "TimmSEResNeXtAA201D_32x8d",
    "TimmSEResNet101",
    "TimmSEResNet152",
    "TimmSEResNet152D",
    "TimmSEResNet18",
    "TimmSEResNet34",
    "TimmSEResNet50",
    "aliases",
    "entry",
    "family_module",
    "get_model",
    "get_weights",
    "list_models",
    "register_weights",
    "tags",
]
