"""The family skeleton: the keras.applications contract, performed once for every model.

A family module declares its models (`ModelEntry`s, each with its spec: the architecture as
data) and a `Family`: its body and the few hooks where it differs from keras' ResNet50
(its own argument checks, head, input-size rule, default name, keras.applications base
network, PyTorch layer names). `Family.public_builder` makes each public builder (name,
signature, docstring); `Family.build` performs the contract steps.
"""

import dataclasses
import functools
import inspect
import numbers
import os
import types
import warnings
from collections.abc import Callable

import keras
from keras import layers

from se_keras import weights as weights_lib
from se_keras.applications import _registry, base_weights
from se_keras.convert import torch_checkpoint
from se_keras.layers import SqueezeExcite
from se_keras.utils.validation import check_bool, check_choice, check_positive
from se_keras.weights import hub

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


def keras_arguments(weights=None, leading=None):
    """keras.applications' builder arguments and defaults, in their order: ResNet50's, or,
    with `leading` (a dict of width knobs), MobileNet's (`input_shape`, the knobs, then the
    rest). `name` follows them (`Family.public_builder`)."""
    arguments = {
        "include_top": True,
        "weights": weights,
        "input_tensor": None,
        "input_shape": None,
        "pooling": None,
        "classes": 1000,
        "classifier_activation": "softmax",
    }
    if leading is None:
        return arguments
    del arguments["input_shape"]
    return {"input_shape": None, **leading, **arguments}


SE_ARGUMENTS = {"se_ratio": 16, "se_options": None}  # every builder's keyword-only SE knobs


@dataclasses.dataclass(frozen=True)
class Family:
    """What a family adds to the contract that `build` performs once for every model.

    Hooks receive the model's spec and `args`: the builder's arguments (checked by the time
    the body runs), plus `model_name` and `se` (the `SqueezeExcite` arguments of every SE
    block, None for the plain network; a spec may set defaults in its `se_defaults`).
    """

    models: tuple  # the family's `ModelEntry`s
    body: Callable  # (inputs, spec, args) -> features
    check: Callable = None  # (spec, args): checks of the family's own arguments
    head: Callable = None  # (features, spec, args) -> outputs; default `default_head`
    input_shape: Callable = None  # (spec, args, entry) -> shape; default `fixed_input_shape`
    default_name: Callable = None  # (spec, args, rows) -> the name when `name=None`
    # (spec, args, input_shape) -> a function building the keras.applications network whose
    # ImageNet weights `weights="imagenet_base"` copies; `base_match`: how its layers match.
    base: Callable = None
    base_match: str = "name"  # "name" or "structure" (`base_weights.copy_weights`)
    torch_names: Callable = None  # (spec, Keras layer name) -> prefix in a PyTorch state dict
    # (entry, args) -> the WeightsInfo of `weights="hf://owner/name"`, a Hugging Face Hub
    # checkpoint of the model's architecture; families without it refuse such ids.
    hub_checkpoint: Callable = None

    def public_builder(self, model_name, doc, arguments, keyword_only=SE_ARGUMENTS, name=True):
        """The public builder of `model_name`: `arguments`, then `name` (default the model
        name, or None when `default_name` derives it), then `keyword_only`."""
        entry = self.entry(model_name)
        positional = {**arguments, "name": model_name if name else None}
        Parameter = inspect.Parameter
        signature = inspect.Signature(
            [
                Parameter(n, Parameter.POSITIONAL_OR_KEYWORD, default=d)
                for n, d in positional.items()
            ]
            + [Parameter(n, Parameter.KEYWORD_ONLY, default=d) for n, d in keyword_only.items()]
        )

        def builder(*args, **kwargs):
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as error:
                raise TypeError(f"{entry.function}(): {error}") from None
            bound.apply_defaults()
            return self.build(entry, types.SimpleNamespace(**bound.arguments))

        builder.__name__ = builder.__qualname__ = entry.function
        builder.__module__ = self.body.__module__
        builder.__signature__ = signature
        builder.__doc__ = doc
        return builder

    def entry(self, model_name):
        return next(entry for entry in self.models if entry.name == model_name)

    def build(self, entry, args):
        """keras.applications' contract: check, input, body, head, model, weights."""
        spec = entry.spec
        checkpoint = None
        if self.hub_checkpoint is not None and hub.is_hub(args.weights):
            checkpoint = self.hub_checkpoint(entry, args)
        validate_arguments(
            None if checkpoint else args.weights,
            args.include_top,
            args.classes,
            args.pooling,
            entry.name,
            args.classifier_activation,
        )
        if self.check is not None:
            self.check(spec, args)
        args.model_name = entry.name
        args.se = se_layer_options(
            args.se_ratio, args.se_options, **getattr(spec, "se_defaults", {})
        )
        input_shape = (self.input_shape or fixed_input_shape)(spec, args, entry)
        inputs = model_input(args.input_tensor, input_shape)
        features = self.body(inputs, spec, args)
        outputs = (self.head or default_head)(features, spec, args)
        name = args.name
        if name is None:
            name = self.default_name(spec, args, spatial_size(input_shape)[0])
        model = build_model(inputs, args.input_tensor, outputs, name)
        base = None if self.base is None else self.base(spec, args, input_shape)
        names = None if self.torch_names is None else functools.partial(self.torch_names, spec)
        if checkpoint is None:
            load_weights(model, args.weights, entry.name, names, base and (base, self.base_match))
        else:
            # A Hub checkpoint was saved from a network with the caller's SE settings.
            reference = {"se_ratio": args.se_ratio, "se_options": args.se_options}
            load_weights(model, checkpoint, entry.name, names, reference=reference)
        model.se_keras_build = Build(entry.name, args.weights, args.include_top, options(args))
        return model

    def classifier(self, features, entry, options, classes, activation):
        """The layers the builder, given `options` (`Build.options`), puts on `features`
        with `include_top=True`: keras-hub's ImageClassifier head (`se_keras.presets`)."""
        args = types.SimpleNamespace(
            **options,
            include_top=True,
            pooling=None,
            classes=classes,
            classifier_activation=activation,
            model_name=entry.name,
        )
        return (self.head or default_head)(features, entry.spec, args)


@dataclasses.dataclass(frozen=True)
class Build:
    """How a builder made a model (its `se_keras_build`): what a keras-hub preset records."""

    model_name: str
    weights: object  # None, a tag, an `hf://` id or a file path
    include_top: bool
    options: dict  # the builder's own arguments: SE knobs, widths (not keras.applications')


def options(args):
    """The builder arguments of `args` other than keras.applications' (and `name`)."""
    common = set(keras_arguments()) | {"name", "model_name", "se"}
    return {k: v for k, v in vars(args).items() if k not in common}


def fixed_input_shape(spec, args, entry, default_size=None):
    """keras' ResNet50 rule: the registry's default size (or `default_size`), `min_size` the
    smallest."""
    return obtain_input_shape(
        args.input_shape,
        default_size=default_size or entry.default_size,
        min_size=entry.min_size,
        require_flatten=args.include_top,
        weights=args.weights,
        input_tensor=args.input_tensor,
    )


def mobile_input_shape(spec, args, entry):
    """keras' MobileNet rule: the default size is the input's own when it is square and
    among `spec.sizes` (those with released weights), else the registry's default."""
    input_shape = args.input_shape
    if (
        input_shape is None
        and args.input_tensor is not None
        and keras.backend.is_keras_tensor(args.input_tensor)
    ):
        input_shape = tuple(args.input_tensor.shape[1:])
    default_size = entry.default_size
    if isinstance(input_shape, (tuple, list)) and len(input_shape) == 3:
        rows, cols = spatial_size(input_shape)
        if rows == cols and rows in spec.sizes:
            default_size = rows
    return obtain_input_shape(
        input_shape,
        default_size=default_size,
        min_size=entry.min_size,
        require_flatten=args.include_top,
        weights=args.weights,
    )


def default_head(x, spec, args):
    """keras' ResNet head; a spec's `dropout`, if it has one, goes before the classifier."""
    return classifier_head(
        x,
        args.include_top,
        args.pooling,
        args.classes,
        args.classifier_activation,
        getattr(spec, "dropout", 0.0),
    )


def validate_arguments(
    weights, include_top, classes, pooling, model_name, classifier_activation="softmax"
):
    """The keras.applications checks, plus refusals of unknown `pooling` values (which
    keras.applications ignores) and activations (which Keras reports without naming the
    argument). `weights` may name any of the model's registered tags."""
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
        _check_activation(classifier_activation, is_tag)
    check_choice("pooling", pooling, (None, "avg", "max"))


def _check_activation(classifier_activation, pretrained):
    try:
        activation = keras.activations.get(classifier_activation)
    except ValueError:
        raise ValueError(
            "Invalid value for argument `classifier_activation`: expected a Keras activation "
            "(a name such as 'softmax', a callable, or None for logits). "
            f"Received: classifier_activation={classifier_activation!r}"
        ) from None
    allowed = (keras.activations.get("softmax"), keras.activations.get(None))
    if pretrained and activation not in allowed:
        raise ValueError(
            "With pretrained weights and `include_top=True`, `classifier_activation` must be "
            f"'softmax' or None (logits), as in keras.applications. "
            f"Received: classifier_activation={classifier_activation!r}"
        )


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


def load_weights(model, weights, model_name, torch_names=None, base=None, reference=None):
    """Load `weights` (None, a registered tag, a `WeightsInfo` or a file path) into `model`.

    `torch_names` maps a Keras layer name to its prefix in the authors' PyTorch state dict.
    `base`, for families built on a keras.applications network, is `(build, match)`: a
    function returning that network with its ImageNet weights, and how its layers match
    ours (`base_weights.copy_weights`); it serves `weights="imagenet_base"`. A checkpoint is
    converted once on the full network it was saved from: the model's default one with the
    checkpoint's classes, and `reference` (builder arguments) where that differs.
    """
    if weights is None:
        return model
    if weights == _registry.BASE_TAG and base is not None:
        build, match = base
        base_weights.copy_weights(base_weights.build_base(build), model, match)
        return model
    if isinstance(weights, weights_lib.WeightsInfo) or not _is_file(weights):
        info = weights
        if not isinstance(info, weights_lib.WeightsInfo):
            info = _registry.get_weights(model_name, weights)
        arguments = {"classes": info.preprocessing.get("num_classes", 1000), **(reference or {})}
        return weights_lib.load(
            model,
            info,
            torch_names,
            lambda: _registry.get_model(model_name, weights=None, **arguments),
        )
    path = os.fspath(weights)
    if path.endswith((".pth", ".pt", ".bin", ".safetensors")):
        if torch_names is None:
            raise ValueError(
                f"{model_name} has no PyTorch checkpoint layout to convert from (only the "
                "SE-ResNet families have one: the authors', timm's); give a Keras "
                f"`.weights.h5` file instead. Received: weights={path!r}"
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
