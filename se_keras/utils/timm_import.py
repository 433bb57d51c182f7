"""timm without torchvision.

timm imports torchvision at import time, but only for data transforms, datasets and a frozen
BatchNorm that its ResNets never use; a CPU-only torch build often has no torchvision that
matches it. `load_timm` therefore puts a stand-in package in its place when none is
installed: every `torchvision.*` module exists, and every name in it is a placeholder class
that refuses to be instantiated, so a code path that really needed torchvision fails loudly
instead of computing something else. Used where timm is the reference (the tests) or a
competitor (the benchmark's `timm` runtime); se-keras itself never needs timm.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types


class _PlaceholderType(type):
    def __getattr__(cls, name):  # enum-like members such as InterpolationMode.BICUBIC
        if name.startswith("__"):
            raise AttributeError(name)
        return f"{cls.__name__}.{name}"


def _placeholder(name):
    def refuse(self, *args, **kwargs):
        raise RuntimeError(f"torchvision.{name} is a stand-in (torchvision is not installed).")

    return _PlaceholderType(name, (), {"__init__": refuse})


class _StandInModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = _placeholder(name)
        setattr(self, name, value)
        return value


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StandInModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def load_timm():
    """The timm package, or None when timm or torch is not installed."""
    if importlib.util.find_spec("timm") is None or importlib.util.find_spec("torch") is None:
        return None
    if importlib.util.find_spec("torchvision") is None and not any(
        isinstance(finder, _StandInFinder) for finder in sys.meta_path
    ):
        sys.meta_path.append(_StandInFinder())
    import timm

    return timm
