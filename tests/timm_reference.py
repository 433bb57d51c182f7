"""timm 1.0.31 as the reference for se-keras' timm family (`pip install --no-deps timm`).

timm imports torchvision at import time, but only for data transforms, datasets and a frozen
BatchNorm that its ResNets never use; the CPU test environment has no torchvision build that
matches its torch. `load_timm` therefore puts a stand-in package in its place when none is
installed: every `torchvision.*` module exists, and every name in it is a placeholder class
that refuses to be instantiated, so a code path that really needed torchvision fails loudly
instead of computing something else.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

import numpy as np

from se_keras.convert import reference


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
    if importlib.util.find_spec("torchvision") is None:
        sys.meta_path.append(_StandInFinder())
    import timm

    return timm


def run(torch_model, images_nhwc, features_only=False, exact=True):
    """Logits (or, with `features_only`, NHWC features) of a timm model for NHWC images;
    with `exact`, computed in float64: the result float32 implementations are measured
    against (for random SENet-154 weights timm's own float32 output is 6e-5 of the logit
    scale away from it, so two float32 results can differ by twice that)."""
    import copy

    import torch

    model = copy.deepcopy(torch_model).double() if exact else torch_model
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)))
        x = x.double() if exact else x
        if features_only:
            return model.eval().forward_features(x).numpy().transpose(0, 2, 3, 1)
        return model.eval()(x).numpy()


def randomize(torch_model, seed=0, size=64):
    """Random BatchNorm scales and shifts and SE biases (`reference.randomize`), then every
    BatchNorm's running statistics measured on a random batch: statistics that are random
    but calibrated, so that the activations of a deep network stay of order one (with
    uncalibrated ones SE-ResNet-152's features reach 1e6 and float32 rounding dominates),
    while a converter that drops or swaps them still changes every output."""
    import torch

    reference.randomize(torch_model, seed)
    norms = [m for m in torch_model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    generator = torch.Generator().manual_seed(seed)
    batch = torch.randn(4, 3, size, size, generator=generator)
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: after one batch, that batch's statistics
    torch_model.train()
    with torch.no_grad():
        torch_model(batch)
    for norm in norms:
        norm.momentum = 0.1
    return torch_model.eval()
