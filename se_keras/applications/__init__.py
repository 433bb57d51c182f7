"""Model builders mirroring keras.applications, and a registry of them by name."""

import re

from se_keras.applications import se_inception, se_mobilenet, se_resnet, se_shufflenet, se_vgg
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

_FAMILIES = (se_resnet, se_inception, se_mobilenet, se_shufflenet, se_vgg)
_MODELS = {name: builder for family in _FAMILIES for name, builder in family.MODELS.items()}


def list_models():
    """Names of every model builder, by family then depth (for example `"se_resnet50"`)."""
    return sorted(
        _MODELS, key=lambda name: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]
    )


def _check_name(name):
    if name not in _MODELS:
        raise ValueError(
            f"Unknown model name. Expected one of {list_models()}. Received: name={name!r}"
        )


def get_model(name, **kwargs):
    """Build the model registered as `name`; keyword arguments go to its builder."""
    _check_name(name)
    return _MODELS[name](**kwargs)


def family_module(name):
    """The family module of model `name`: its `preprocess_input`, `decode_predictions`."""
    _check_name(name)
    return next(family for family in _FAMILIES if name in family.MODELS)


__all__ = [
    "SEBNInception",
    "SEInceptionResNetV2",
    "SEInceptionV3",
    "SEMobileNet",
    "SEMobileNetV2",
    "SENet154",
    "SEShuffleNet",
    "SEShuffleNetV2",
    "SEResNet18",
    "SEResNet34",
    "SEResNet50",
    "SEResNet101",
    "SEResNet152",
    "SEResNeXt50",
    "SEResNeXt101",
    "SEVGG16",
    "SEVGG19",
    "family_module",
    "get_model",
    "list_models",
]
