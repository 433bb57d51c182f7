"""Registry of pretrained weights: which tags each model has, and how to fetch them."""

_REGISTRY = {}


def tags(model_name):
    """Tags registered for `model_name` (for example {"imagenet"})."""
    return set(_REGISTRY.get(model_name, {}))


def fetch(model_name, tag):
    raise NotImplementedError
