"""The bundled default dataset: UCI handwritten digits (the copy inside scikit-learn), as a
tensorflow-datasets builder, so it works offline and like any other tfds dataset.

1,797 8x8 grayscale images of the digits 0-9 (pixel values 0-16, stored scaled to 0-255);
every fifth image (360) is the test split, the other 1,437 the train split.
"""

import numpy as np
import tensorflow_datasets as tfds


class SeKerasDigits(tfds.core.GeneratorBasedBuilder):
    """UCI ML hand-written digits (Alpaydin & Kaynak, 1998), from scikit-learn's copy."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Train/test split: every fifth image is a test image."}

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://archive.ics.uci.edu/dataset/80",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download: scikit-learn ships the data
        return {
            "train": self._generate_examples(test=False),
            "test": self._generate_examples(test=True),
        }

    def _generate_examples(self, test):
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]
        for index, (image, label) in enumerate(zip(images, digits.target)):
            if (index % 5 == 0) == test:
                yield index, {"image": image, "label": int(label)}
