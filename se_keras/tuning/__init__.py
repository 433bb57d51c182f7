"""Hyper-parameter search with keras-tuner: `SEHyperModel` and the resumable `tune` search.

keras-tuner is optional (`pip install "se-keras[tune]"`); it is imported on first use of
`SEHyperModel` or `tune`, with an install hint when it is missing.
"""

import importlib

from se_keras.tuning.config import TUNERS, TuneConfig

_LAZY = {
    "SEHyperModel": "hypermodel",
    "compile_model": "hypermodel",
    "tune": "search",
    "make_tuner": "search",
    "trial_table": "search",
    "TuneResult": "search",
    "SearchFailed": "search",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"se_keras.tuning.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'se_keras.tuning' has no attribute {name!r}")


__all__ = [
    "TUNERS",
    "SEHyperModel",
    "SearchFailed",
    "TuneConfig",
    "TuneResult",
    "compile_model",
    "make_tuner",
    "trial_table",
    "tune",
]
