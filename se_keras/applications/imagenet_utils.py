"""Input preprocessing and prediction decoding for ImageNet-trained se-keras models."""

import keras

# The released PyTorch checkpoints expect RGB in [0, 1] normalised per channel.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def preprocess_input(x, data_format=None):
    """RGB images in [0, 255] -> the authors' normalisation: `(x / 255 - mean) / std`.

    Accepts a NumPy array or a backend tensor, channels last or first (`data_format`).
    """
    return keras.applications.imagenet_utils.preprocess_input(
        x, data_format=data_format, mode="torch"
    )


def decode_predictions(preds, top=5):
    """Decodes ImageNet predictions into `(class_id, class_name, score)` lists, best first."""
    return keras.applications.imagenet_utils.decode_predictions(preds, top=top)
