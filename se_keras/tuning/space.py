"""The search space of `SEHyperModel`, as data, and the checks of what a caller fixes in it.

Nothing here needs keras-tuner: the CLI checks its options with these before any search.
"""

import numbers

from se_keras import applications
from se_keras.applications import se_resnet
from se_keras.applications.se_resnet import SE_POSITIONS
from se_keras.applications.se_shufflenet import V2_WIDTHS
from se_keras.training.config import OPTIMIZERS
from se_keras.utils.validation import check_choice, check_positive

# The registry's `searched` models: their builders accept any side from MIN_SIDE on (the
# Inception family needs 75 px, SE-ResNet-101/152, SE-ResNeXt-101 and SENet-154 are too
# heavy to search over). The ResNet family has the stage and position ablations, the
# others (the mobile networks) the width `alpha`.
_SEARCHED = [name for name in applications.list_models() if applications.entry(name).searched]
RESNET_MODELS = tuple(n for n in _SEARCHED if applications.family_module(n) is se_resnet)
MOBILE_MODELS = tuple(n for n in _SEARCHED if n not in RESNET_MODELS)
MODELS = RESNET_MODELS + MOBILE_MODELS
MIN_SIDE = 32

# name: (values, default). Every value of `alpha` is accepted by all four mobile builders
# (SE-ShuffleNet v2 only has the widths 0.5, 1.0, 1.5 and 2.0).
CHOICES = {
    "se_ratio": ((4, 8, 16, 32), 16),
    "se_pooling": (("avg", "max"), "avg"),
    "se_gate": (("sigmoid", "hard_sigmoid", "tanh"), "sigmoid"),
    # The paper's stage ablation (SE in one stage only) and SE everywhere.
    "se_stages": (("2,3,4,5", "2", "3", "4", "5"), "2,3,4,5"),
    "se_position": (SE_POSITIONS, "standard"),
    "alpha": ((0.5, 1.0, 1.5), 1.0),
    "optimizer": (OPTIMIZERS, "sgd"),
}
LEARNING_RATE = (1e-4, 0.1, 0.01)  # log-uniform (min, max), default
# Hyper-parameters that exist only for some models (keras-tuner conditional scopes on `model`).
CONDITIONAL = {"se_stages": RESNET_MODELS, "se_position": RESNET_MODELS, "alpha": MOBILE_MODELS}
NAMES = ("model", *CHOICES, "learning_rate")
# A fixed value may leave the searched values (any ratio, any width), within what the
# layer and the builders accept; the SqueezeExcite layer also has a ReLU gate.
_ALLOWED = {
    "se_pooling": ("avg", "max"),
    "se_gate": ("sigmoid", "hard_sigmoid", "tanh", "relu"),
    "se_position": SE_POSITIONS,
    "optimizer": OPTIMIZERS,
}


def parse_stages(value):
    """`"3,4"` (the hyper-parameter's form; keras-tuner values are scalars) -> (3, 4)."""
    try:
        stages = tuple(int(s) for s in str(value).split(","))
    except ValueError:
        stages = ()
    if not stages or not set(stages) <= {2, 3, 4, 5}:
        raise ValueError(
            "Invalid value for hyper-parameter `se_stages`: expected stage numbers among 2, 3, "
            f"4, 5 separated by commas, e.g. '3,4'. Received: se_stages={value!r}"
        )
    return stages


def check_models(models):
    """The candidate models: a non-empty list of names from MODELS (default: all of them)."""
    if models is None:
        return list(MODELS)
    names = [models] if isinstance(models, str) else list(models)
    wrong = [name for name in names if name not in MODELS]
    if not names or wrong:
        raise ValueError(
            f"Invalid value for argument `models`: expected names among {list(MODELS)} (the "
            f"registered models that build from {MIN_SIDE}x{MIN_SIDE} inputs"
            f"{'; not ' + ', '.join(map(repr, wrong)) if wrong else ''}). "
            f"Received: models={models!r}"
        )
    return list(dict.fromkeys(names))


def check_input_shape(input_shape, channels_first=False):
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else ()
    spatial = shape[1:] if channels_first else shape[:2]
    valid = len(shape) == 3 and all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in shape
    )
    if not valid or min(spatial) < MIN_SIDE:
        raise ValueError(
            "Invalid value for argument `input_shape`: expected three positive integers with "
            f"a spatial side of at least {MIN_SIDE}. Received: input_shape={input_shape!r}"
        )
    return shape


def check_fixed(fixed, models):
    """`fixed` with each value checked (and `se_stages` given as a sequence turned into the
    hyper-parameter's string form). `models` are the candidates before fixing."""
    if fixed is None:
        return {}
    if not isinstance(fixed, dict):
        raise ValueError(
            f"Invalid value for argument `fixed`: expected a dict. Received: fixed={fixed!r}"
        )
    checked = {}
    for name, value in fixed.items():
        if name not in NAMES:
            raise ValueError(
                f"Invalid value for argument `fixed`: unknown hyper-parameter {name!r}; "
                f"expected names among {list(NAMES)}. Received: fixed={fixed!r}"
            )
        try:
            checked[name] = _check_value(name, value, models)
        except ValueError as error:
            raise ValueError(f"Invalid value for argument `fixed`: {error}") from None
    candidates = [checked["model"]] if "model" in checked else models
    for name, owners in CONDITIONAL.items():
        if name in checked and not set(owners) & set(candidates):
            raise ValueError(
                f"Invalid value for argument `fixed`: {name!r} applies to {list(owners)} "
                f"only, and none of them is searched ({candidates}). Received: fixed={fixed!r}"
            )
    return checked


def _check_value(name, value, models):
    if name == "model":
        if value not in models:
            raise ValueError(f"expected `model` among {models}. Received: model={value!r}")
        return value
    if name == "se_stages":
        # The hyper-parameter's form is a string ("3,4"); accept a sequence or a number too.
        is_sequence = isinstance(value, (list, tuple, range))
        value = ",".join(str(s) for s in value) if is_sequence else str(value)
        parse_stages(value)
        return value
    if name in _ALLOWED:
        return check_choice(name, value, _ALLOWED[name])
    check_positive(name, value, integer=False)
    if name == "alpha" and "se_shufflenet_v2" in models and value not in V2_WIDTHS:
        raise ValueError(
            f"se_shufflenet_v2 has the widths {list(V2_WIDTHS)} only; fix `model` too or "
            f"search without it. Received: alpha={value!r}"
        )
    return value
