"""Images for full-integer calibration when the user gives none: the bundled digits, or
random RGB, preprocessed like the model's input."""

import numpy as np


def images(model, preprocess, source="digits", count=200, held_out=4):
    """(calibration images, a few held-out images to verify on, a sentence saying which).

    `source` is `"digits"` (the bundled dataset; falls back to random RGB, and says so, when
    tensorflow-datasets is not installed) or `"random"`.
    """
    size = model.inputs[0].shape[1]
    if source == "digits":
        try:
            from se_keras import data
        except ImportError as error:
            source = f'random (the digits need `pip install "se-keras[data]"`: {error})'
        else:

            def take(split, n):
                batches = data.make_dataset("digits", split, size, n, preprocess, training=False)
                return next(iter(batches))[0].numpy()

            return (
                take("train", count),
                take("test", held_out),
                f"{count} images of the bundled digits dataset (verified on {held_out} "
                "test images)",
            )
    rgb = np.random.default_rng(0).uniform(0, 255, (count + held_out, size, size, 3))
    preprocessed = np.asarray(preprocess(rgb.astype("float32")))
    return preprocessed[:count], preprocessed[count:], f"{count} random images ({source})"
