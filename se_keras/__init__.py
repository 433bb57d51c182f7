"""se-keras: Squeeze-and-Excitation networks for Keras 3."""

import importlib

# `_startup` first (imports run in this order): for the `se-keras` command, TensorFlow then
# loads without its native log lines. Everything se-keras writes into a `.keras` file (its
# layers, the training run's learning-rate schedule) is registered with Keras here, so
# `import se_keras` is all a fresh process needs before `keras.saving.load_model`.
from se_keras import _startup, layers  # noqa: F401
from se_keras.training import schedule  # noqa: F401
from se_keras.utils import after_import

__version__ = "0.2.0"

_SUBMODULES = (
    "analysis",
    "applications",
    "benchmark",
    "convert",
    "data",
    "export",
    "presets",
    "training",
    "tuning",
    "utils",
    "weights",
)


# keras-hub's loaders find its classes in Keras' registry (`se_keras.presets`).
after_import.when_imported("keras_hub", lambda: importlib.import_module("se_keras.presets"))


def __getattr__(name):
    # The heavier subpackages load on first use.
    if name in _SUBMODULES:
        return importlib.import_module(f"se_keras.{name}")
    raise AttributeError(f"module 'se_keras' has no attribute {name!r}")
