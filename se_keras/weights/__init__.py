"""Pretrained weights, the mechanism: a file's description (`WeightsInfo`), download,
verification, cache and conversion. Which files exist is declared by the model families
(`se_keras.applications`); this package knows nothing of them.

A registered file is downloaded once into the Keras cache (`$KERAS_HOME/models/se_keras`,
default `~/.keras`), checked against its sha256, converted once to Keras layout and cached
again as `<model>-<tag>-<sha>.npz`, so later loads need neither the network nor PyTorch.
`SE_KERAS_WEIGHTS_URL` points every download at a mirror that serves the same file names.
An origin `hf://owner/name[/file]` is a Hugging Face Hub file (`se_keras.weights.hub`): it
stays in huggingface_hub's cache, checked against the digest the Hub reports for it.
"""

import dataclasses
import os
import re
import zipfile

import numpy as np

from se_keras.convert import torch_checkpoint
from se_keras.utils import files
from se_keras.weights import download, hub

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
    sha256: str  # the whole hex digest, or the published prefix of it (Hub files: or None)
    preprocessing: dict = dataclasses.field(default_factory=lambda: dict(IMAGENET))
    top1: float = None  # reported ImageNet top-1 (%) of the released weights
    source: str = ""


def weights_info(
    model_name, tag, origin, sha256, file_name=None, preprocessing=None, top1=None, source=""
):
    """A checked `WeightsInfo` (see `se_keras.applications.register_weights`)."""
    if not isinstance(tag, str) or not tag or os.path.sep in tag:
        raise ValueError(f"`tag` must be a non-empty name without '/'. Received: tag={tag!r}")
    origins = (origin,) if isinstance(origin, str) else ()
    if isinstance(origin, (list, tuple)):
        origins = tuple(origin)
    if not origins or not all(isinstance(o, str) and "://" in o for o in origins):
        raise ValueError(f"`origin` must be a URL or a list of URLs. Received: origin={origin!r}")
    on_hub = hub.is_hub(origins[0])
    if on_hub:
        hub.parse(origins[0])
        if len(origins) > 1:
            raise ValueError(f"A Hub file has one origin. Received: origin={origin!r}")
    # A Hub file may go without a digest: it is checked against the one the Hub reports.
    unpinned = on_hub and sha256 is None
    if not unpinned and (
        not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{8,64}", sha256.lower())
    ):
        raise ValueError(
            f"`sha256` must be 8 to 64 hexadecimal digits. Received: sha256={sha256!r}"
        )
    name = file_name or origins[0].rsplit("/", 1)[-1].split("?")[0]
    # The cache holds plain file names: nothing outside it, nothing that names the folder.
    plain = (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and os.path.basename(name) == name
        and "\\" not in name
    )
    if not plain or name.endswith(".sha256"):
        argument = f"file_name={file_name!r}" if file_name else f"origin={origin!r}"
        raise ValueError(
            "The cached file needs a plain file name (no folders), taken from `file_name` or "
            f"else from the end of the first `origin`. Received: {argument}"
        )
    return WeightsInfo(
        model_name,
        tag,
        name,
        origins,
        None if unpinned else sha256.lower(),
        dict(preprocessing or IMAGENET),
        top1,
        source,
    )


def load(model, info, torch_names, build_reference):
    """Load the weights file `info` into `model`, downloading and converting it once.

    `build_reference()` builds the full network the checkpoint was saved from: the
    conversion runs on it once, and any variant of it (headless, another input size) then
    loads from the cached arrays. `torch_names` maps Keras layer names to checkpoint names.
    """
    if info.file_name.endswith(".h5"):
        model.load_weights(download.fetch(info))
        return model
    if torch_names is None:
        raise ValueError(
            f"{info.model} has no PyTorch checkpoint layout to convert {info.file_name} from. "
            f"Received: weights={info.tag!r}"
        )
    path, digest = None, info.sha256
    if hub.is_hub(info.origins[0]):  # its digest is known once the Hub has reported it
        path, digest = hub.fetch(info)
    converted = os.path.join(download.cache_dir(), f"{info.model}-{info.tag}-{digest[:8]}.npz")
    arrays = _read_converted(converted)
    if arrays is None:  # not converted yet, or changed since it was written: convert again
        download.remove_cached(converted)
        _convert_to_cache(path or download.fetch(info), torch_names, converted, build_reference)
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


def _convert_to_cache(path, torch_names, destination, build_reference):
    """Convert the downloaded checkpoint on the full reference architecture and cache it."""
    state_dict = torch_checkpoint.read_state_dict(path)
    converted = torch_checkpoint.convert(build_reference(), state_dict, torch_names)
    with files.atomic_path(destination) as partial, open(partial, "wb") as file:
        np.savez(file, **{f"{layer}/{name}": v for (layer, name), v in converted.items()})
    download.record_digest(destination)
