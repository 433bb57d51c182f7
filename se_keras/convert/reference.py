"""The authors' PyTorch network (Cadene's pretrainedmodels `senet.py`), for verification.

`pip install --no-deps pretrainedmodels`: the module is loaded by path, because importing the
package itself pulls torchvision.
"""

import importlib.util
import os

# Our model name -> the builder's name in senet.py.
REFERENCE_BUILDERS = {
    "se_resnet50": "se_resnet50",
    "se_resnet101": "se_resnet101",
    "se_resnet152": "se_resnet152",
    "se_resnext50": "se_resnext50_32x4d",
    "se_resnext101": "se_resnext101_32x4d",
    "senet154": "senet154",
}


def load_senet_module():
    """The reference module, or None when pretrainedmodels (or torch) is not installed."""
    spec = importlib.util.find_spec("pretrainedmodels")
    if spec is None or importlib.util.find_spec("torch") is None:
        return None
    path = os.path.join(spec.submodule_search_locations[0], "models", "senet.py")
    module_spec = importlib.util.spec_from_file_location("_senet_reference", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def reference_model(model_name, state_dict):
    """The authors' network for `model_name` holding `state_dict` (NumPy arrays), or None
    when the reference is not installed or has no such model."""
    module = load_senet_module()
    if module is None or model_name not in REFERENCE_BUILDERS:
        return None
    import torch

    model = getattr(module, REFERENCE_BUILDERS[model_name])(pretrained=None)
    model.load_state_dict({key: torch.from_numpy(value) for key, value in state_dict.items()})
    return model.eval()


def run(torch_model, images_nhwc, features_only=False):
    """Logits (or, with `features_only`, NHWC features) of the reference for NHWC images."""
    import numpy as np
    import torch

    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)))
        if features_only:
            return torch_model.features(x).numpy().transpose(0, 2, 3, 1)
        return torch_model(x).numpy()


def randomize(torch_model, seed=0):
    """Random weights AND random BatchNorm statistics (for parity checks), in place.

    Default initialisation leaves BatchNorm at mean 0 / variance 1, under which a converter
    that drops or swaps the running statistics, or uses another epsilon, would go unnoticed.
    """
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
