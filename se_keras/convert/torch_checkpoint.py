"""Load a PyTorch state dict in the authors' layout into an se-keras model, by layer name.

A `.pth` file is read with `torch.load(weights_only=True)`, which refuses arbitrary pickled
objects; a `.safetensors` file needs no PyTorch at all.
"""

import numpy as np

from se_keras.utils.validation import first_line


def _linear(weight):
    # nn.Linear (out, in) or a 1x1 nn.Conv2d (out, in, 1, 1) -> Keras (in, out)
    return weight.reshape(weight.shape[0], -1).T


def _conv(weight):
    # (out, in / groups, kh, kw) -> (kh, kw, in / groups, out)
    return weight.transpose(2, 3, 1, 0)


def _same(value):
    return value


# For each Keras variable name: the tensor suffix in the state dict and the layout change.
_VARIABLES = {
    "Conv2D": {"kernel": ("weight", _conv), "bias": ("bias", _same)},
    "BatchNormalization": {
        "gamma": ("weight", _same),
        "beta": ("bias", _same),
        "moving_mean": ("running_mean", _same),
        "moving_variance": ("running_var", _same),
    },
    "Dense": {"kernel": ("weight", _linear), "bias": ("bias", _same)},
    "SqueezeExcite": {
        "reduce_kernel": ("fc1.weight", _linear),
        "reduce_bias": ("fc1.bias", _same),
        "expand_kernel": ("fc2.weight", _linear),
        "expand_bias": ("fc2.bias", _same),
    },
}
_IGNORED_SUFFIXES = ("num_batches_tracked",)


def read_state_dict(path):
    """A dict of NumPy arrays from a `.pth`/`.pt`/`.bin` or `.safetensors` file."""
    path = str(path)
    if path.endswith(".safetensors"):
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise ImportError(
                "Reading .safetensors files needs the `safetensors` package: "
                "pip install 'se-keras[torch]'"
            ) from None
        try:
            return load_file(path)
        except Exception as error:  # safetensors raises its own SafetensorError
            raise ValueError(
                f"Could not read the safetensors file {path!r}: {first_line(error)}"
            ) from None
    try:
        import torch
    except ImportError:
        raise ImportError(
            "Reading PyTorch checkpoints needs PyTorch: pip install 'se-keras[torch]' "
            "(or convert the file to .safetensors)"
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        if "weights only load failed" in str(error).lower():
            # torch's message goes on with advice to load the file as an unrestricted
            # pickle, which would run any code it holds: not advice to pass on.
            reason = "it holds Python objects besides tensors, which se-keras does not unpickle"
        else:
            reason = first_line(error)
        raise ValueError(f"Could not read the PyTorch checkpoint {path!r}: {reason}") from None
    for key in ("state_dict", "model"):  # training checkpoints wrap the state dict
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path!r} holds no state dict (found {type(state).__name__}).")
    return {
        key.removeprefix("module."): value.detach().float().numpy()
        for key, value in state.items()
        if hasattr(value, "detach")
    }


def convert(model, state_dict, torch_name):
    """Map `state_dict` onto `model`: returns {(layer, variable): array}, checked for fit.

    `torch_name(layer_name)` gives the tensor prefix of a Keras layer in the state dict.
    Raises ValueError naming the first tensor that is missing, misshapen or unused.
    """
    converted, used = {}, set()
    for layer in model.layers:
        if not layer.weights:
            continue
        prefix = torch_name(layer.name)
        variables = _VARIABLES.get(type(layer).__name__)
        if prefix is None or variables is None:
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) has no counterpart in the "
                "PyTorch layout; this checkpoint format cannot fill it."
            )
        for variable in layer.weights:
            suffix, to_keras = variables[variable.name]
            key = f"{prefix}.{suffix}"
            if key not in state_dict:
                raise ValueError(
                    f"The checkpoint has no tensor {key!r} for layer {layer.name!r} "
                    f"(variable {variable.name!r})."
                )
            value = to_keras(np.asarray(state_dict[key]))
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"Tensor {key!r} has shape {tuple(state_dict[key].shape)}, which does not "
                    f"fit layer {layer.name!r} (variable {variable.name!r}, Keras shape "
                    f"{tuple(variable.shape)})."
                )
            converted[(layer.name, variable.name)] = value
            used.add(key)
    # A headless model leaves the classifier unused; anything else unused is a mismatch.
    classifier = torch_name("predictions") + "."
    has_classifier = any(layer.name == "predictions" for layer in model.layers)
    for key in state_dict:
        if key in used or key.endswith(_IGNORED_SUFFIXES):
            continue
        if key.startswith(classifier) and not has_classifier:
            continue
        raise ValueError(
            f"The checkpoint tensor {key!r} matches no layer of model {model.name!r}; "
            "is it the checkpoint of another architecture?"
        )
    return converted


def assign(model, converted):
    """Set every variable of `model` from `converted` ({(layer, variable): array}).

    Checks everything before changing anything: a missing or misshapen array is an error,
    and only the classifier may be left over (a headless model).
    """
    updates = []
    for layer in model.layers:
        for variable in layer.weights:
            value = converted.get((layer.name, variable.name))
            if value is None or tuple(value.shape) != tuple(variable.shape):
                found = "missing" if value is None else f"shape {tuple(value.shape)}"
                raise ValueError(
                    f"The weights do not fit layer {layer.name!r}: variable {variable.name!r} "
                    f"needs shape {tuple(variable.shape)}, found {found}."
                )
            updates.append((variable, value))
    names = {layer.name for layer in model.layers}
    extra = [key for key in converted if key[0] not in names and key[0] != "predictions"]
    if extra:
        raise ValueError(f"The weights hold {'/'.join(extra[0])!r}, which matches no layer.")
    for variable, value in updates:
        variable.assign(value)


def load_into(model, path, torch_name):
    """Convert the checkpoint at `path` and load it into `model` (all or nothing)."""
    assign(model, convert(model, read_state_dict(path), torch_name))
    return model
