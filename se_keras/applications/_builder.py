"""What every family shares: the keras.applications argument contract, input, head, weights."""

import numbers
import os
import warnings

import keras
from keras import layers

from se_keras import weights as weights_lib
from se_keras.applications import _registry, base_weights
from se_keras.convert import torch_checkpoint
from se_keras.layers import SqueezeExcite
from se_keras.utils.validation import check_bool, check_choice, check_positive

BN_EPSILON = 1e-5  # the released (PyTorch / Caffe) models; Keras' default is 1e-3
BN_MOMENTUM = 0.9  # PyTorch's momentum=0.1 in Keras' convention


def channel_axis():
    return -1 if keras.config.image_data_format() == "channels_last" else 1


def conv_bn(x, filters, kernel, name, stride=1, groups=1, relu=True, depthwise=False):
    """Conv (no bias; depthwise when `depthwise`, then `filters` is unused) + BatchNorm
    (+ ReLU), padded like PyTorch (`padding=k//2`): Keras' "same" would pad stride-2
    convolutions only at the bottom and right."""
    padding = "same" if kernel > 1 else "valid"
    if kernel > 1 and stride > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    if depthwise:
        conv = layers.DepthwiseConv2D(
            kernel, strides=stride, padding=padding, use_bias=False, name=f"{name}_conv"
        )
    else:
        conv = layers.Conv2D(
            filters,
            kernel,
            strides=stride,
            padding=padding,
            groups=groups,
            use_bias=False,
            name=f"{name}_conv",
        )
    x = layers.BatchNormalization(
        axis=channel_axis(), epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn"
    )(conv(x))
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def validate_arguments(weights, include_top, classes, pooling, model_name):
    """The keras.applications checks, plus a refusal of unknown `pooling` values (which
    keras.applications ignores). `weights` may name any of the model's registered tags."""
    has_pretrained = _registry.tags(model_name)
    is_tag = isinstance(weights, str) and weights in has_pretrained and not _is_file(weights)
    if weights == "imagenet" and not is_tag:
        hint = " or ".join(repr(t) for t in sorted(has_pretrained)) or "None"
        raise ValueError(
            f"No ImageNet weights were released for {model_name}; use weights={hint} "
            "(or a weights file). Received: weights='imagenet'"
        )
    if not (weights is None or is_tag or _is_file(weights)):
        tags = ", ".join(repr(t) for t in sorted(has_pretrained)) or "none for this model"
        raise ValueError(
            "The `weights` argument should be either `None` (random initialization), "
            f"a registered tag ({tags}), or the path to a weights file "
            "(.weights.h5, .pth, .safetensors) that exists. "
            f"Received: weights={weights!r}"
        )
    # Weights trained on another label set say so (timm's ImageNet-12k: 11,821 classes).
    expected = 1000
    if is_tag and weights != _registry.BASE_TAG:
        expected = _registry.get_weights(model_name, weights).preprocessing.get("num_classes", 1000)
    if is_tag and include_top and classes != expected:
        raise ValueError(
            f'If using `weights="{weights}"` with `include_top=True`, `classes` should be '
            f"{expected}. Received: classes={classes}"
        )
    check_bool("include_top", include_top)
    if include_top:
        check_positive("classes", classes)
    check_choice("pooling", pooling, (None, "avg", "max"))


def se_layer_options(se_ratio, se_options, **defaults):
    """Checked `SqueezeExcite` arguments for every SE block of a model, or None when
    `se_ratio` is None (the plain network). `se_options` may override `defaults`."""
    if se_options is not None and (
        not isinstance(se_options, dict) or {"ratio", "name", "data_format"} & set(se_options)
    ):
        raise ValueError(
            "`se_options` must be a dict of SqueezeExcite arguments other than `ratio` (use "
            "`se_ratio`), `name` and `data_format` (the model's, from "
            f"`keras.config.image_data_format()`). Received: se_options={se_options!r}"
        )
    if se_ratio is None:
        return None
    check_positive("se_ratio", se_ratio, integer=False)
    return {"ratio": se_ratio, **defaults, **(se_options or {})}


def squeeze_excite(x, options, name):
    """The one way SE enters a network: `SqueezeExcite(**options)` named `name` on `x`, or
    `x` itself when `options` is None (`se_layer_options` of `se_ratio=None`)."""
    return x if options is None else SqueezeExcite(**options, name=name)(x)


def check_width(name, value, minimum=None):
    """A positive width multiplier, at least `minimum` (so that no layer has zero channels)."""
    check_positive(name, value, integer=False)
    if minimum is not None and value < minimum:
        raise ValueError(
            f"Invalid value for argument `{name}`: it leaves a layer without channels; "
            f"expected at least {minimum}. Received: {name}={value!r}"
        )
    return value


def spatial_size(input_shape):
    """(rows, cols) of a (rows, cols, channels) or (channels, rows, cols) shape."""
    if keras.config.image_data_format() == "channels_first":
        return tuple(input_shape[1:3])
    return tuple(input_shape[:2])


def resolve_input_shape(input_shape, input_tensor, sizes, include_top, weights):
    """keras.applications' MobileNet input logic (SE-MobileNet, SE-ShuffleNet): the default
    size is the input's own when it is square and among `sizes` (those with released
    weights), else 224; the shape of a Keras `input_tensor` stands in for a missing
    `input_shape`."""
    if (
        input_shape is None
        and input_tensor is not None
        and keras.backend.is_keras_tensor(input_tensor)
    ):
        input_shape = tuple(input_tensor.shape[1:])
    default_size = 224
    if isinstance(input_shape, (tuple, list)) and len(input_shape) == 3:
        rows, cols = spatial_size(input_shape)
        if rows == cols and rows in sizes:
            default_size = rows
    return obtain_input_shape(
        input_shape,
        default_size=default_size,
        min_size=32,
        require_flatten=include_top,
        weights=weights,
    )


def _is_file(value):
    return isinstance(value, (str, os.PathLike)) and os.path.isfile(value)


def _dimension(value):
    return value is None or (
        isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0
    )


def obtain_input_shape(
    input_shape, default_size, min_size, require_flatten, weights, input_tensor=None
):
    """Resolve and check `input_shape` the way keras.applications does; an `input_tensor`'s
    own shape gets the same size and channel checks."""
    channels_first = keras.config.image_data_format() == "channels_first"
    pretrained = isinstance(weights, str) and not _is_file(weights)
    if input_shape is not None:
        if (
            not isinstance(input_shape, (tuple, list))
            or len(input_shape) != 3
            or not all(_dimension(d) for d in input_shape)
        ):
            raise ValueError(
                "`input_shape` must be a tuple of three positive integers (None for a "
                f"variable spatial size). Received: input_shape={input_shape!r}"
            )
        input_shape = tuple(input_shape)
    if input_tensor is not None and input_shape is None:
        shape = tuple(getattr(input_tensor, "shape", ()))[1:]
        if len(shape) == 3 and all(_dimension(d) for d in shape):
            # Checked as an input_shape would be, but the model's shape stays the tensor's.
            try:
                obtain_input_shape(shape, default_size, min_size, False, weights)
            except ValueError as error:
                raise ValueError(
                    str(error).replace("Received: input_shape=", "Received: input_tensor.shape=")
                ) from None
    default_channels = 3
    if input_shape is not None and not pretrained:
        default_channels = input_shape[0] if channels_first else input_shape[-1]
    size = (default_size, default_size)
    default_shape = (default_channels, *size) if channels_first else (*size, default_channels)
    if pretrained and require_flatten:
        if input_shape is not None and input_shape != default_shape:
            raise ValueError(
                f"When setting `include_top=True` and loading `{weights}` weights, "
                f"`input_shape` should be {default_shape}. Received: input_shape={input_shape}"
            )
        return default_shape
    if input_shape is None:
        if require_flatten:
            return default_shape
        return (3, None, None) if channels_first else (None, None, 3)
    channels = input_shape[0] if channels_first else input_shape[-1]
    spatial = input_shape[1:] if channels_first else input_shape[:2]
    if pretrained and channels != 3:
        raise ValueError(f"The input must have 3 channels. Received: input_shape={input_shape}")
    if any(s is not None and s < min_size for s in spatial):
        raise ValueError(
            f"Input size must be at least {min_size}x{min_size}. "
            f"Received: input_shape={input_shape}"
        )
    if require_flatten and None in input_shape:
        raise ValueError(
            "If `include_top` is True, you should specify a static `input_shape`. "
            f"Received: input_shape={input_shape}"
        )
    return input_shape


def model_input(input_tensor, input_shape):
    """The input layer, or the user's tensor (wrapped in an Input if it is not a Keras one)."""
    if input_tensor is None:
        return keras.Input(shape=input_shape)
    if keras.backend.is_keras_tensor(input_tensor):
        return input_tensor
    return keras.Input(tensor=input_tensor, shape=input_shape)


def classifier_head(x, include_top, pooling, classes, classifier_activation, dropout=0.0):
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = layers.Dropout(dropout, name="top_dropout")(x)
        return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def build_model(img_input, input_tensor, outputs, name):
    inputs = img_input if input_tensor is None else keras.utils.get_source_inputs(input_tensor)
    return keras.Model(inputs, outputs, name=name)


def load_weights(model, weights, model_name, torch_names=None, base=None):
    """Load `weights` (None, a registered tag or a file path) into `model`.

    `torch_names` maps a Keras layer name to its prefix in the authors' PyTorch state dict.
    `base`, for families built on a keras.applications network, is `(build, match)`: a
    function returning that network with its ImageNet weights, and how its layers match
    ours (`base_weights.copy_weights`); it serves `weights="imagenet_base"`.
    """
    if weights is None:
        return model
    if weights == _registry.BASE_TAG and base is not None:
        build, match = base
        base_weights.copy_weights(base_weights.build_base(build), model, match)
        return model
    if not _is_file(weights):
        info = _registry.get_weights(model_name, weights)
        return weights_lib.load(
            model, info, torch_names, lambda: _registry.get_model(model_name, weights=None)
        )
    path = os.fspath(weights)
    if path.endswith((".pth", ".pt", ".bin", ".safetensors")):
        if torch_names is None:
            raise ValueError(
                f"{model_name} has no PyTorch checkpoint layout to convert from (only the "
                "SE-ResNet family has one: the authors' and timm's legacy layout); give a "
                f"Keras `.weights.h5` file instead. Received: weights={path!r}"
            )
        torch_checkpoint.load_into(model, path, torch_names)
    else:
        _load_keras_weights(model, path, model_name)
    return model


def _load_keras_weights(model, path, model_name):
    """`model.load_weights(path)`, all or nothing, with one error for a file that does not
    fit: Keras warns once per layer it skips ("Skipping nested container ...", dozens of
    lines) and then raises with whole weight arrays in its message."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(path)
            problem = None
        except ValueError as error:
            problem = str(error).splitlines()[0]
    skipped = [w for w in caught if "Skipping nested container" in str(w.message)]
    for warning in caught:
        if warning not in skipped:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    if problem is None and skipped:
        problem = f"{len(skipped)} parts of the model found nothing to load in the file."
    if problem is not None:
        raise ValueError(
            f"The weights file does not fit {model_name}: {problem} Received: weights={path!r}"
        )
