"""Shared fixtures: the authors' PyTorch reference (pretrainedmodels/models/senet.py)."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from se_keras.convert import reference  # noqa: E402

# Trainable parameter counts of the reference models (torch `parameters()`), DESIGN.md.
REFERENCE_PARAMS = {
    "se_resnet50": 28_088_024,
    "se_resnet101": 49_326_872,
    "se_resnet152": 66_821_848,
    "se_resnext50_32x4d": 27_559_896,
    "se_resnext101_32x4d": 48_955_416,
    "senet154": 115_088_984,
}
# Our registry name for each reference builder.
OURS = {ref: ours for ours, ref in reference.REFERENCE_BUILDERS.items()}


@pytest.fixture(scope="session")
def senet():
    module = reference.load_senet_module()
    if module is None:
        raise RuntimeError("The reference needs torch and `pip install --no-deps pretrainedmodels`.")
    return module


def randomize(torch_model, seed=0):
    """Random weights AND random BatchNorm statistics, so that a converter that drops or
    swaps the running mean / variance (or uses another epsilon) shows up in the logits."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in torch_model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)
                module.running_mean.normal_(0.0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
            elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                if module.bias is not None:
                    module.bias.normal_(0.0, 0.1, generator=generator)
    return torch_model.eval()


def reference_outputs(torch_model, images, features_only=False):
    """Run the reference on NHWC images; NHWC features or logits back as NumPy."""
    import torch

    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        if features_only:
            return torch_model.features(x).numpy().transpose(0, 2, 3, 1)
        return torch_model(x).numpy()
