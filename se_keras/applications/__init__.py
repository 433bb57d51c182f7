"""Model builders mirroring keras.applications, and a registry of them by name."""

import re

from se_keras.applications import se_resnet
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

_MODELS = {**se_resnet.MODELS}


def list_models():
    """Names of every model builder, by family then depth (for example `"se_resnet50"`)."""
    return sorted(_MODELS, key=lambda name: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)])


def get_model(name, **kwargs):
    """Build the model registered as `name`; keyword arguments go to its builder."""
    if name not in _MODELS:
        raise ValueError(
            f"Unknown model name. Expected one of {list_models()}. Received: name={name!r}"
        )
    return _MODELS[name](**kwargs)


__all__ = [
    "SENet154", "SEResNet18", "SEResNet34", "SEResNet50", "SEResNet101", "SEResNet152",
    "SEResNeXt50", "SEResNeXt101", "get_model", "list_models",
]
