"""se-keras: Squeeze-and-Excitation networks for Keras 3."""

__version__ = "0.1.0"

from se_keras import applications, layers  # noqa: E402,F401
