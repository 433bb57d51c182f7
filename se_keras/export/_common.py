"""What the export backends share: the artifact's input (its shape and `tf.TensorSpec`),
running a runtime over images in batches of the artifact's size, and the calibration images
of full-integer quantization. Backends import this module, never the package's `__init__`,
which imports them."""

import itertools

import numpy as np

CALIBRATION_EXAMPLES = 200  # full-integer calibration: the first examples of the data given


def input_shape(model):
    """The model's one input shape without the batch axis; it must be fixed."""
    if len(model.inputs) != 1:
        raise ValueError(
            f"Only single-input models are exported. Received: a model with "
            f"{len(model.inputs)} inputs"
        )
    shape = tuple(model.inputs[0].shape[1:])
    if None in shape:
        raise ValueError(
            "Export needs a fixed input size; build the model with "
            f"`input_shape=`. Received: input shape {shape}"
        )
    return shape


def input_spec(model, batch_size):
    """The `tf.TensorSpec` of the artifact's input, named `images`."""
    import tensorflow as tf

    return tf.TensorSpec((batch_size, *input_shape(model)), tf.float32, name="images")


def in_batches(run, images, batch_size):
    """`run` over `images` (float32), in chunks of a fixed `batch_size` (the last one padded
    with zeros) or all at once when it is None."""
    images = np.asarray(images, dtype=np.float32)
    if batch_size is None:
        return np.asarray(run(images))
    outputs = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        padded = np.concatenate(
            [chunk, np.zeros((batch_size - len(chunk), *chunk.shape[1:]), np.float32)]
        )
        outputs.append(np.asarray(run(padded))[: len(chunk)])
    return np.concatenate(outputs)


def calibration_examples(batches):
    """The first `CALIBRATION_EXAMPLES` images of `batches`, one `(1, H, W, C)` array each."""
    images = (image[None] for batch in batches for image in batch)
    return itertools.islice(images, CALIBRATION_EXAMPLES)
