"""se-keras: Squeeze-and-Excitation networks for Keras 3."""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "analysis", "applications", "benchmark", "convert", "data", "export", "layers", "training",
    "tuning", "utils", "weights",
)


def __getattr__(name):
    # Submodules load on first use, so `se-keras --help` does not start TensorFlow.
    if name in _SUBMODULES:
        return importlib.import_module(f"se_keras.{name}")
    raise AttributeError(f"module 'se_keras' has no attribute {name!r}")
