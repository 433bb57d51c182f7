"""Pretrained weights: a registry of (model, tag) -> file, and loading by tag.

A registered file is downloaded once into the Keras cache (`$KERAS_HOME/models/se_keras`,
default `~/.keras`), checked against its sha256, converted once to Keras layout and cached
again as `<model>-<tag>-<sha>.npz`, so later loads need neither the network nor PyTorch.
`SE_KERAS_WEIGHTS_URL` points every download at a mirror that serves the same file names.
"""

import dataclasses
import os
import re
import zipfile

import numpy as np

from se_keras.utils import files
from se_keras.weights import download

IMAGENET = {
    "input_size": 224,
    "resize": 256,  # shorter side, then a centre crop of input_size
    "interpolation": "bilinear",
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
    "input_range": "RGB in [0, 1]",
    "classes": "ImageNet-1k, sorted WNIDs",
}


@dataclasses.dataclass(frozen=True)
class WeightsInfo:
    model: str
    tag: str
    file_name: str
    origins: tuple  # tried in order; SE_KERAS_WEIGHTS_URL replaces them all
    sha256: str  # the whole hex digest, or the published prefix of it
    preprocessing: dict = dataclasses.field(default_factory=lambda: dict(IMAGENET))
    top1: float = None  # reported ImageNet top-1 (%) of the released weights
    source: str = ""


_REGISTRY = {}


def register(
    model_name, tag, origin, sha256, file_name=None, preprocessing=None, top1=None, source=""
):
    """Register weights for `model_name` so that its builder accepts `weights=tag`.

    Args:
        model_name: a name from `se_keras.applications.list_models()`.
        tag: the value users pass as `weights=`.
        origin: URL of the file (or a list of URLs, tried in order). A PyTorch state dict
            (`.pth`, `.safetensors`) in the authors' layout is converted; a Keras
            `.weights.h5` is loaded as it is.
        sha256: the file's sha256 hex digest (a prefix of at least 8 digits is accepted).
        file_name: the cached file's name; default: the last part of the URL.
    """
    from se_keras import applications

    if model_name not in applications.list_models():
        raise ValueError(
            f"Unknown model name; expected one of {applications.list_models()}. "
            f"Received: model_name={model_name!r}"
        )
    if not isinstance(tag, str) or not tag or os.path.sep in tag:
        raise ValueError(f"`tag` must be a non-empty name without '/'. Received: tag={tag!r}")
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{8,64}", sha256.lower()):
        raise ValueError(
            f"`sha256` must be 8 to 64 hexadecimal digits. Received: sha256={sha256!r}"
        )
    origins = (origin,) if isinstance(origin, str) else tuple(origin)
    if not origins or not all(isinstance(o, str) and "://" in o for o in origins):
        raise ValueError(f"`origin` must be a URL or a list of URLs. Received: origin={origin!r}")
    name = file_name or origins[0].rsplit("/", 1)[-1].split("?")[0]
    # The cache holds plain file names: nothing outside it, nothing that names the folder.
    plain = name not in ("", ".", "..") and os.path.basename(name) == name and "\\" not in name
    if not plain or name.endswith(".sha256"):
        argument = f"file_name={file_name!r}" if file_name else f"origin={origin!r}"
        raise ValueError(
            "The cached file needs a plain file name (no folders), taken from `file_name` or "
            f"else from the end of the first `origin`. Received: {argument}"
        )
    file_name = name
    _REGISTRY.setdefault(model_name, {})[tag] = WeightsInfo(
        model_name,
        tag,
        file_name,
        origins,
        sha256.lower(),
        dict(preprocessing or IMAGENET),
        top1,
        source,
    )


def tags(model_name):
    """Tags registered for `model_name` (for example {"imagenet"})."""
    return set(_REGISTRY.get(model_name, {}))


def get(model_name, tag):
    """The `WeightsInfo` registered as (`model_name`, `tag`)."""
    try:
        return _REGISTRY[model_name][tag]
    except KeyError:
        raise ValueError(
            f"No weights registered as {tag!r} for model {model_name!r}; registered: "
            f"{sorted(tags(model_name)) or 'none'}. Received: weights={tag!r}"
        ) from None


def load(model, model_name, tag, torch_names):
    """Load the weights registered as `tag` into `model` (downloading and converting once)."""
    from se_keras.convert import torch_checkpoint

    info = get(model_name, tag)
    if info.file_name.endswith(".h5"):
        model.load_weights(download.fetch(info))
        return model
    converted = os.path.join(download.cache_dir(), f"{model_name}-{tag}-{info.sha256[:8]}.npz")
    arrays = _read_converted(converted)
    if arrays is None:  # not converted yet, or changed since it was written: convert again
        download.remove_cached(converted)
        _convert_to_cache(info, torch_names, converted)
        arrays = _read_converted(converted)
    torch_checkpoint.assign(model, arrays)
    return model


def _read_converted(path):
    """The arrays of a file written by `_convert_to_cache`, or None when it is missing,
    changed since it was written (its recorded digest no longer applies) or unreadable."""
    if download.recorded_digest(path) is None:
        return None
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return {tuple(k.split("/")): arrays[k] for k in arrays.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def _convert_to_cache(info, torch_names, destination):
    """Convert the downloaded checkpoint on the full reference architecture and cache it."""
    from se_keras import applications
    from se_keras.convert import torch_checkpoint

    state_dict = torch_checkpoint.read_state_dict(download.fetch(info))
    reference = applications.get_model(info.model, weights=None)
    converted = torch_checkpoint.convert(reference, state_dict, torch_names)
    with files.atomic_path(destination) as partial, open(partial, "wb") as file:
        np.savez(file, **{f"{layer}/{name}": v for (layer, name), v in converted.items()})
    download.record_digest(destination)


_CADENE = "http://data.lip6.fr/cadene/pretrainedmodels/"
_TIMM = "https://github.com/rwightman/pytorch-image-models/releases/download/"
for _name, _file, _top1, _mirror in (
    ("se_resnet50", "se_resnet50-ce0d4300.pth", 77.64, "v0.1-cadene/"),
    ("se_resnet101", "se_resnet101-7e38fcc6.pth", 78.40, "v0.1-cadene/"),
    ("se_resnet152", "se_resnet152-d17c99b7.pth", 78.66, "v0.1-cadene/"),
    ("se_resnext50", "se_resnext50_32x4d-a260b3a4.pth", 79.08, "v0.1-cadene/"),
    ("se_resnext101", "se_resnext101_32x4d-3b2fe3d8.pth", 80.24, "v0.1-cadene/"),
    ("senet154", "senet154-c7b49a05.pth", 81.30, "v0.1-cadene/"),
):
    register(
        _name,
        "imagenet",
        origin=(_CADENE + _file, _TIMM + _mirror + _file),
        sha256=_file[-12:-4],
        top1=_top1,
        source="authors' Caffe weights, PyTorch port (Cadene/pretrained-models.pytorch)",
    )
# SE-ResNet-18/34 were trained by timm (legacy senet.py), not released by the authors.
register(
    "se_resnet18",
    "imagenet",
    origin=_TIMM + "v0.1-weights/seresnet18-4bb0ce65.pth",
    sha256="4bb0ce65",
    top1=71.74,
    preprocessing={**IMAGENET, "interpolation": "bicubic"},
    source="timm (legacy_seresnet18)",
)
register(
    "se_resnet34",
    "imagenet",
    origin=_TIMM + "v0.1-weights/seresnet34-a4004e63.pth",
    sha256="a4004e63",
    top1=74.79,
    source="timm (legacy_seresnet34)",
)
