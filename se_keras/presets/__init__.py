"""se-keras models as keras-hub presets: `keras_hub.models.ImageClassifier.from_preset(dir)`
and `keras_hub.models.Backbone.from_preset(dir)` load them, `hf://owner/name` ones too.

`save_preset(model, dir)` writes keras-hub's preset layout (config.json and
model.weights.h5 for the backbone, task.json and task.weights.h5 for the head,
preprocessor.json and image_converter.json for the weights' view, metadata.json). The
classes are keras-hub's own, subclassed (`SEBackbone`, `SEImageClassifier`,
`SEImageClassifierPreprocessor`, `SEImageConverter`); `import se_keras` registers them with
Keras once keras_hub is imported (`se_keras.utils.after_import`).
"""

import json
import os

import keras
import numpy as np

from se_keras import applications, weights
from se_keras.presets.backbone import SEBackbone
from se_keras.presets.classifier import (
    SEImageClassifier,
    SEImageClassifierPreprocessor,
    SEImageConverter,
)
from se_keras.utils import files

# Each family's `preprocess_input` (its PREPROCESS_MODE) as a mean and std on [0, 1] RGB and
# a channel order; "torch" takes the weights' own mean and std.
_NORMALISATION = {
    "tf": {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},  # x / 127.5 - 1
    "caffe": {  # BGR, minus the ImageNet mean in [0, 255]
        "mean": (123.68 / 255, 116.779 / 255, 103.939 / 255),
        "std": (1 / 255,) * 3,
        "channel_order": "bgr",
    },
}


def save_preset(model, preset_dir, overwrite=False):
    """Save `model` (see `from_model`) as a keras-hub preset in the folder `preset_dir`,
    which appears only once complete; `overwrite=True` replaces a preset there."""
    preset_dir = os.fspath(preset_dir)
    if os.path.exists(preset_dir) and not (overwrite and os.path.isdir(preset_dir)):
        raise ValueError(f"{preset_dir} exists; pass overwrite=True to replace the preset there")
    task = from_model(model)
    with files.atomic_path(preset_dir) as partial:
        task.save_to_preset(partial)
    return preset_dir


def from_model(model):
    """`model`, as built by an `se_keras.applications` builder (with its weights, a tag's
    included), as keras-hub's model: the keras-hub idiom is then `.save_to_preset(dir)`.

    With `include_top=True` it is an `SEImageClassifier`, whose image converter carries the
    weights' view (a tag's own size, crop, interpolation, mean and std; the ImageNet default
    otherwise); with `include_top=False` (and `pooling=None`) an `SEBackbone`. Either is
    checked against `model` on a random batch.
    """
    build = getattr(model, "se_keras_build", None)
    if build is None:
        raise ValueError(
            "A keras-hub preset is made from a model built by an se_keras.applications "
            "builder (which records its name and options). "
            f"Received: model={getattr(model, 'name', model)!r}"
        )
    try:
        json.dumps(build.options)
    except TypeError:
        raise ValueError(
            "A preset records the builder's options in JSON, and these are not all JSON "
            f"values. Received: {build.options!r}"
        ) from None
    task = _preset_model(model, build)
    _copy_weights(model, task)
    side = applications.entry(build.model_name).min_size  # where the model's size is free
    shape = [d or side for d in model.input_shape[1:]]
    images = np.random.default_rng(0).uniform(-2, 2, (2, *shape)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    # A call, not predict(): that would run the preprocessor on these model inputs.
    got = keras.ops.convert_to_numpy(task(images, training=False))
    difference = float(np.abs(got - expected).max())
    if difference > 1e-5 * max(float(np.abs(expected).max()), 1.0):
        raise ValueError(f"The keras-hub model differs from {model.name} by {difference:.2e}.")
    return task


def _preset_model(model, build):
    backbone = SEBackbone(build.model_name, model.input_shape[1:], build.options)
    if not build.include_top:
        if backbone.output_shape != model.output_shape:
            raise ValueError(
                "A backbone preset is the model's feature map: build it with pooling=None. "
                f"Received: a model with output shape {model.output_shape}"
            )
        return backbone
    activation = model.layers[-1].get_config().get("activation")
    shape = model.input_shape[1:]
    side = shape[0] if keras.config.image_data_format() == "channels_last" else shape[1]
    converter = SEImageConverter(**image_view(build.model_name, build.weights, side))
    return SEImageClassifier(
        backbone,
        model.output_shape[-1],
        preprocessor=SEImageClassifierPreprocessor(converter),
        activation=None if activation == "linear" else activation,
    )


def image_view(model_name, tag=None, size=None):
    """`SEImageConverter`'s arguments for model `model_name` with weights `tag`: that tag's
    size, crop and interpolation (the ImageNet default for others) and the family's
    normalisation; `size`, the model's input side, where it is not the tag's."""
    preprocessing = weights.IMAGENET
    if isinstance(tag, str) and tag in applications.tags(model_name) - {applications.BASE_TAG}:
        preprocessing = applications.get_weights(model_name, tag).preprocessing
    size = size or preprocessing["input_size"]
    view = {
        "image_size": (size, size),
        "crop_pct": preprocessing.get(
            "crop_pct", preprocessing["input_size"] / preprocessing["resize"]
        ),
        "interpolation": preprocessing["interpolation"],
        "mean": preprocessing["mean"],
        "std": preprocessing["std"],
    }
    mode = applications.family_module(model_name).PREPROCESS_MODE
    return {**view, **_NORMALISATION.get(mode, {})}


def _copy_weights(model, saved):
    """`model`'s weights into the preset's model, layer by layer (the names are the
    builder's in both)."""
    backbone = saved if isinstance(saved, SEBackbone) else saved.backbone
    targets = {layer.name: layer for layer in backbone.layers}
    if saved is not backbone:
        targets.update({layer.name: layer for layer in saved.layers if layer is not backbone})
    for layer in model.layers:
        if layer.weights:
            targets[layer.name].set_weights(layer.get_weights())


__all__ = [
    "SEBackbone",
    "SEImageClassifier",
    "SEImageClassifierPreprocessor",
    "SEImageConverter",
    "from_model",
    "image_view",
    "save_preset",
]
