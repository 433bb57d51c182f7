"""Input pipelines: tensorflow-datasets names, image folders, and the bundled digits."""

from se_keras.data.pipeline import DEFAULT_DATASET, View, dataset_info, make_dataset, normalizer

__all__ = ["DEFAULT_DATASET", "View", "dataset_info", "make_dataset", "normalizer"]
