"""Model builders mirroring keras.applications, and a registry of them by name."""

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
    """Names of every model builder, sorted (for example `"se_resnet50"`)."""
    return sorted(_MODELS)


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
