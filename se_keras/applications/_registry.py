"""The model registry: what is known about every model, declared once beside its family.

Each family module declares `MODELS` (a `ModelEntry` per model: its builder's name, its spec,
sizes, recorded parameter and multiply-add counts) and `WEIGHTS` (its released files, as
`se_keras.weights.WeightsInfo`), the way timm keeps `default_cfgs` beside a model.
`se_keras.applications` hands each family to `add_family`; everything else (the builders'
checks, `se-keras list`, the tuner's search space, the tests) reads the registry.

This module imports no family, so the families' builders can read it while they run.
"""

import dataclasses
import re

from se_keras import weights as weights_lib

BASE_TAG = "imagenet_base"  # the keras.applications base network's ImageNet weights


@dataclasses.dataclass(frozen=True)
class PublishedMacs:
    """Multiply-adds another project publishes for the same network (timm's model cards),
    at the input side it gives them for; `se-keras list` shows them beside ours."""

    macs: int  # as published, e.g. 4_100_000_000 for "GMACs: 4.1"
    size: int  # the input side they are given at
    source: str  # where they are published


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str  # registry name, e.g. "se_resnet50"
    function: str  # its public builder in the family module, e.g. "SEResNet50"
    spec: object  # the architecture, as the family's spec dataclass
    default_size: int  # input side of the default model (and of released weights)
    min_size: int  # smallest input side it builds from
    features: int  # channels of the headless model's output
    params: int  # trainable parameters of the default model (recorded; checked by a test)
    macs: int  # multiply-adds at the default size (recorded; checked by a test)
    paper_macs: str = "-"  # the paper's figure, where it gives one
    published_macs: PublishedMacs = None  # timm's model card figure, where one was found
    imagenet_base: bool = False  # whether `weights="imagenet_base"` applies
    searched: bool = False  # a candidate of `se_keras.tuning` (builds at 32x32, not too heavy)


_MODELS = {}  # name -> ModelEntry
_FAMILIES = {}  # name -> family module
_WEIGHTS = {}  # name -> {tag: WeightsInfo}
_ALIASES = {}  # another name a family accepts (e.g. timm's "seresnet50") -> registry name


def add_family(module):
    """Register a family module's `MODELS` and `WEIGHTS`."""
    for entry in module.MODELS:
        if entry.name in _MODELS:
            raise ValueError(f"Model {entry.name!r} is declared twice.")
        if getattr(getattr(module, entry.function, None), "__name__", None) != entry.function:
            raise ValueError(f"{module.__name__} has no builder {entry.function!r}.")
        _MODELS[entry.name] = entry
        _FAMILIES[entry.name] = module
    for info in getattr(module, "WEIGHTS", ()):
        check_name(info.model, "model_name")
        _WEIGHTS.setdefault(info.model, {})[info.tag] = info
    # A family's `ALIASES` ({other name: registry name}); a registry name always wins.
    for alias, name in getattr(module, "ALIASES", {}).items():
        _ALIASES[alias] = check_name(name)


def _natural(name):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_models(pretrained=False):
    """Names of every model, by family then depth (for example `"se_resnet50"`);
    `pretrained=True`: only those with registered weights files."""
    names = [name for name in _MODELS if not pretrained or _WEIGHTS.get(name)]
    return sorted(names, key=_natural)


def aliases():
    """The other names `get_model` accepts (timm's architecture names), each to its model."""
    return dict(_ALIASES)


def check_name(name, argument="name"):
    """The registry name of `name` (itself, or the model an alias stands for)."""
    if name in _MODELS:
        return name
    if isinstance(name, str) and name in _ALIASES:
        return _ALIASES[name]
    raise ValueError(
        f"Unknown model name. Expected one of {list_models()}. Received: {argument}={name!r}"
    )


def entry(name):
    """The `ModelEntry` of model `name`."""
    return _MODELS[check_name(name)]


def family_module(name):
    """The family module of model `name`: its `preprocess_input`, `decode_predictions`."""
    return _FAMILIES[check_name(name)]


def builder(name):
    """The public builder of model `name`, e.g. `SEResNet50` for "se_resnet50"."""
    return getattr(family_module(name), entry(name).function)


def get_model(name, **kwargs):
    """Build the model registered as `name`; keyword arguments go to its builder."""
    return builder(name)(**kwargs)


def register_weights(
    model_name, tag, origin, sha256, file_name=None, preprocessing=None, top1=None, source=""
):
    """Register weights for `model_name` so that its builder accepts `weights=tag`.

    Args:
        model_name: a name from `list_models()`.
        tag: the value users pass as `weights=`.
        origin: URL of the file (or a list of URLs, tried in order). A PyTorch state dict
            (`.pth`, `.safetensors`) in the authors' layout is converted; a Keras
            `.weights.h5` is loaded as it is.
        sha256: the file's sha256 hex digest (a prefix of at least 8 digits is accepted).
        file_name: the cached file's name; default: the last part of the URL.
        preprocessing, top1, source: what the weights expect and were reported to reach.
    """
    model_name = check_name(model_name, "model_name")
    if tag == BASE_TAG:
        raise ValueError(f"The tag {BASE_TAG!r} is reserved. Received: tag={tag!r}")
    info = weights_lib.weights_info(
        model_name, tag, origin, sha256, file_name, preprocessing, top1, source
    )
    _WEIGHTS.setdefault(model_name, {})[tag] = info
    return info


def tags(name):
    """Every value `weights=` may take for model `name` besides None and a file."""
    name = check_name(name)
    base = {BASE_TAG} if entry(name).imagenet_base else set()
    return set(_WEIGHTS.get(name, {})) | base


def get_weights(name, tag):
    """The `WeightsInfo` registered as (`name`, `tag`)."""
    name = check_name(name)
    try:
        return _WEIGHTS[name][tag]
    except KeyError:
        raise ValueError(
            f"No weights registered as {tag!r} for model {name!r}; registered: "
            f"{sorted(_WEIGHTS.get(name, {})) or 'none'}. Received: weights={tag!r}"
        ) from None
