"""Training: the fit recipe, resumable runs and evaluation."""

from se_keras.training.config import TrainConfig


def __getattr__(name):
    # `train` and `evaluate` load Keras; the configuration alone (for the CLI) does not.
    if name in ("train", "evaluate"):
        from se_keras.training import run

        return getattr(run, name)
    raise AttributeError(f"module 'se_keras.training' has no attribute {name!r}")


__all__ = ["TrainConfig", "evaluate", "train"]
