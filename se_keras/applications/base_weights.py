"""Start an SE network from its base network's weights (a keras.applications model).

Every weighted layer of the base is copied into the matching layer of the SE model; the SE
layers keep their initialisers (matched by name, an SE backbone's SE layers are copied too:
`se-keras train --weights` fine-tunes that way). Layers match by name where the base names
its layers (MobileNet), or by position among the weighted non-SE layers where
keras.applications leaves them auto-named (`conv2d_17`, as in InceptionV3), which works
because the SE builders create the base's layers in the base's order.
"""

import os
import re

from se_keras.applications._registry import BASE_TAG
from se_keras.layers import SqueezeExcite


class BaseWeightsUnavailable(OSError):
    """keras.applications could not fetch the base network's ImageNet weights."""


def build_base(build):
    """`build()` (a keras.applications network with `weights="imagenet"`), with Keras' bare
    "URL fetch failure" turned into an error that names the file and where to put a copy."""
    try:
        return build()
    except Exception as error:  # keras.utils.get_file raises a bare Exception
        found = re.search(r"URL fetch failure on (\S+?):? ", str(error))
        if not found:
            raise
        url = found.group(1)
        home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
        raise BaseWeightsUnavailable(
            f"Could not download the keras.applications weights for weights={BASE_TAG!r} "
            f"({os.path.basename(url)} from {url}): {str(error).split(': ', 1)[-1]}. Offline, "
            f"copy that file into {os.path.join(home, 'models')} (Keras' cache) first."
        ) from None


def _weighted(model):
    return [
        layer for layer in model.layers if layer.weights and not isinstance(layer, SqueezeExcite)
    ]


def _pairs(source, target, match):
    if match == "name":
        # Every weighted layer: a keras base has no SE layers; an SE backbone's are copied.
        names = {layer.name: layer for layer in target.layers}
        for layer in (layer for layer in source.layers if layer.weights):
            if layer.name not in names:
                raise ValueError(
                    f"The base layer {layer.name!r} has no layer of that name in {target.name!r}."
                )
            yield layer, names[layer.name]
        return
    sources, targets = _weighted(source), _weighted(target)
    if len(sources) != len(targets):
        raise ValueError(
            f"{source.name!r} has {len(sources)} weighted layers but {target.name!r} has "
            f"{len(targets)} besides SE: they are not the same base architecture."
        )
    yield from zip(sources, targets)


def copy_weights(source, target, match="name"):
    """Copy `source`'s weights into `target`; `match` is `"name"` or `"structure"`.

    Checks every pair (layer type and weight shapes) before assigning anything. Returns the
    number of layers copied.
    """
    if match not in ("name", "structure"):
        raise ValueError(
            "Invalid value for argument `match`: expected 'name' or 'structure'. "
            f"Received: match={match!r}"
        )
    pairs = list(_pairs(source, target, match))
    for src, dst in pairs:
        shapes = [tuple(w.shape) for w in src.weights], [tuple(w.shape) for w in dst.weights]
        if type(src).__name__ != type(dst).__name__ or shapes[0] != shapes[1]:
            raise ValueError(
                f"Base layer {src.name!r} ({type(src).__name__}, {shapes[0]}) does not fit "
                f"layer {dst.name!r} ({type(dst).__name__}, {shapes[1]})."
            )
    for src, dst in pairs:
        dst.set_weights(src.get_weights())
    return len(pairs)
