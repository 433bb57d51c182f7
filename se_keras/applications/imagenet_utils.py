"""Input preprocessing and prediction decoding for ImageNet-trained se-keras models."""

import functools
import json
import os

import keras
import numpy as np

# The released PyTorch checkpoints expect RGB in [0, 1] normalised per channel.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
_CLASS_INDEX = os.path.join(os.path.dirname(__file__), "data", "imagenet_class_index.json")


def preprocess_input(x, data_format=None):
    """RGB images in [0, 255] -> the authors' normalisation: `(x / 255 - mean) / std`.

    Accepts a NumPy array or a backend tensor, channels last or first (`data_format`).
    """
    return keras.applications.imagenet_utils.preprocess_input(
        x, data_format=data_format, mode="torch"
    )


def load_image(path, input_size=224, resize=256, interpolation="bilinear", **_):
    """An image file as the released weights saw ImageNet: RGB, shorter side resized to
    `resize`, centre crop of `input_size` (torchvision's Resize + CenterCrop, on PIL).

    Returns a float32 array (input_size, input_size, 3) in [0, 255], for `preprocess_input`.
    """
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("Reading images needs Pillow: pip install pillow") from None
    try:
        image = Image.open(path).convert("RGB")
    except (OSError, ValueError) as error:
        raise ValueError(f"Could not read the image {str(path)!r}: {error}") from None
    width, height = image.size
    size = (
        (resize, int(resize * height / width))
        if width <= height
        else (int(resize * width / height), resize)
    )
    methods = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
    image = image.resize(size, methods[interpolation])
    left = int(round((size[0] - input_size) / 2.0))
    top = int(round((size[1] - input_size) / 2.0))
    image = image.crop((left, top, left + input_size, top + input_size))
    return np.asarray(image, dtype="float32")


@functools.cache
def class_index():
    """{index: (WNID, name)} of the 1000 ImageNet classes, shipped with the package."""
    with open(_CLASS_INDEX) as file:
        return {int(k): tuple(v) for k, v in json.load(file).items()}


def decode_predictions(preds, top=5):
    """Decodes ImageNet predictions into lists of `(wnid, class_name, score)`, best first.

    Works offline: the class names ship with the package.
    """
    preds = np.asarray(keras.ops.convert_to_numpy(preds))
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            "`decode_predictions` expects a batch of predictions (a 2D array of shape "
            f"(samples, 1000)). Received array with shape: {preds.shape}"
        )
    names = class_index()
    return [[(*names[i], float(row[i])) for i in np.argsort(row)[::-1][:top]] for row in preds]
