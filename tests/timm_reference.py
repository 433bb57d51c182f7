"""timm 1.0.31 as the reference for se-keras' timm family (`pip install --no-deps timm`).

timm imports torchvision, which the CPU test environment lacks: `load_timm`
(`se_keras.utils.timm_import`) imports it with a stand-in that refuses every use.
"""

import numpy as np

from se_keras.convert import reference
from se_keras.utils.timm_import import load_timm  # noqa: F401 (the tests' way in)


def run(torch_model, images_nhwc, features_only=False):
    """Logits (or, with `features_only`, NHWC features) of a timm model for NHWC images,
    computed in float64: the exact result that implementations are measured against."""
    import copy

    import torch

    model = copy.deepcopy(torch_model).double()
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2))).double()
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
