"""se-keras: Squeeze-and-Excitation networks for Keras 3."""

import importlib
import os
import sys

if os.path.basename(sys.argv[0]) == "se-keras":
    # The command line: keep TensorFlow's C++ start-up chatter out of its output. It has to
    # be set before Keras loads TensorFlow, which the imports below do.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Everything se-keras writes into a `.keras` file (its layers, the training run's learning
# rate schedule) is registered with Keras here, so `import se_keras` is all a fresh process
# needs before `keras.saving.load_model`. Both modules need Keras only.
from se_keras import layers  # noqa: F401
from se_keras.training import schedule  # noqa: F401

__version__ = "0.1.0"

_SUBMODULES = (
    "analysis",
    "applications",
    "benchmark",
    "convert",
    "data",
    "export",
    "training",
    "tuning",
    "utils",
    "weights",
)


def __getattr__(name):
    # The heavier subpackages load on first use.
    if name in _SUBMODULES:
        return importlib.import_module(f"se_keras.{name}")
    raise AttributeError(f"module 'se_keras' has no attribute {name!r}")
