"""`SEHyperModel`: the SE networks and the paper's SE ablations as a keras-tuner space."""

import keras

from se_keras.tuning import space

try:
    import keras_tuner
except ImportError:  # pragma: no cover - depends on the installation
    raise ImportError(
        "Tuning needs keras-tuner: pip install 'se-keras[tune]' (or pip install keras-tuner)."
    ) from None


class SEHyperModel(keras_tuner.HyperModel):
    """A compiled SE network per set of hyper-parameters.

    The space (`se_keras.tuning.space`): `model` (SE-ResNet-18/34/50, SE-ResNeXt-50,
    SE-MobileNet v1/v2, SE-ShuffleNet v1/v2), `se_ratio` (4, 8, 16, 32), `se_pooling` (avg,
    max), `se_gate` (sigmoid, hard_sigmoid, tanh); for the ResNet family only `se_stages`
    ("2,3,4,5" or one stage) and `se_position` (standard, pre, post, identity); for the mobile
    families only `alpha` (0.5, 1.0, 1.5); `optimizer` (sgd, adamw) and `learning_rate`
    (log-uniform in [1e-4, 0.1]).

    Fix any of them in either of two ways: keras-tuner's own, a `keras_tuner.HyperParameters`
    with `hp.Fixed(name, value)` passed to the tuner (`hyperparameters=hp`); or
    `fixed={name: value}` here. A fixed value need not be one of the searched values (any
    ratio, any width the builders accept, the ReLU gate).

    Args:
        input_shape: the models' input shape, at least 32x32.
        num_classes: classes of the softmax classifier.
        models: candidate model names (default: all eight); one name fixes `model`.
        fixed: `{hyper-parameter name: value}` to fix; `se_stages` may be a sequence.
        epochs, steps_per_epoch: the training length, when known: the learning rate then
            follows the training recipe (one warm-up epoch when `epochs > 1`, then cosine
            decay to zero); without them it is constant.
        jit_compile: compile the train step with XLA (default True).
        name, tunable: as for `keras_tuner.HyperModel`.

    The model is compiled like `se-keras train` does (SGD with Nesterov momentum 0.9 or
    AdamW, weight decay 1e-4, categorical cross-entropy, metric `accuracy`), so labels are
    one-hot.
    """

    def __init__(
        self,
        input_shape=(32, 32, 3),
        num_classes=10,
        models=None,
        fixed=None,
        epochs=None,
        steps_per_epoch=None,
        jit_compile=True,
        name=None,
        tunable=True,
    ):
        super().__init__(name=name, tunable=tunable)
        channels_first = keras.config.image_data_format() == "channels_first"
        self.input_shape = space.check_input_shape(input_shape, channels_first)
        self.num_classes = _check_count("num_classes", num_classes)
        self.models = space.check_models(models)
        self.fixed = space.check_fixed(fixed, self.models)
        if (epochs is None) != (steps_per_epoch is None):
            raise ValueError(
                "Pass both `epochs` and `steps_per_epoch` (the schedule's length) or neither. "
                f"Received: epochs={epochs!r}, steps_per_epoch={steps_per_epoch!r}"
            )
        self.epochs = None if epochs is None else _check_count("epochs", epochs, 1)
        self.steps_per_epoch = (
            None if steps_per_epoch is None else _check_count("steps_per_epoch", steps_per_epoch, 1)
        )
        self.jit_compile = bool(jit_compile)

    def build(self, hp):
        values = self.declare(hp)
        return self.build_model(values)

    def declare(self, hp):
        """Register the space in `hp`; the values of this trial (inactive ones left out)."""
        model_fixed = self.fixed.get("model", _caller_fixed(hp, "model"))
        candidates = self.models if model_fixed is None else [model_fixed]
        values = {"model": self._choice(hp, "model", candidates)}
        for name in ("se_ratio", "se_pooling", "se_gate"):
            values[name] = self._choice(hp, name)
        for owners in (space.RESNET_MODELS, space.MOBILE_MODELS):
            scope = [m for m in candidates if m in owners]
            if not scope:
                continue
            with hp.conditional_scope("model", scope):
                for name in (n for n, o in space.CONDITIONAL.items() if o == owners):
                    value = self._choice(hp, name)
                    if values["model"] in scope:
                        values[name] = value
        values["optimizer"] = self._choice(hp, "optimizer")
        if "learning_rate" in self.fixed:
            values["learning_rate"] = hp.Fixed("learning_rate", self.fixed["learning_rate"])
        else:
            low, high, default = space.LEARNING_RATE
            values["learning_rate"] = hp.Float(
                "learning_rate", low, high, sampling="log", default=default
            )
        return values

    def _choice(self, hp, name, values=None):
        if name in self.fixed:
            return hp.Fixed(name, self.fixed[name])
        declared = _caller_fixed(hp, name)
        if declared is not None:
            # The caller's hp.Fixed, declared outside our conditional scope: use its value
            # rather than registering a second, sampled, hyper-parameter of the same name.
            return declared
        if values is None:
            values, default = space.CHOICES[name]
        else:
            default = values[0]
        if len(values) == 1:
            return hp.Fixed(name, values[0])
        return hp.Choice(name, list(values), default=default)

    def build_model(self, values):
        """The compiled model for a dict of hyper-parameter values (as `declare` returns,
        or as saved in `best_hyperparameters.json`)."""
        from se_keras import applications

        name = values["model"]
        if name not in space.MODELS:
            raise ValueError(
                f"Invalid value for hyper-parameter `model`: expected one of "
                f"{list(space.MODELS)}. Received: model={name!r}"
            )
        extra = {}
        if name in space.RESNET_MODELS:
            extra = dict(
                se_stages=space.parse_stages(values["se_stages"]), se_position=values["se_position"]
            )
        elif "alpha" in values:
            extra = dict(alpha=values["alpha"])
        model = applications.get_model(
            name,
            weights=None,
            input_shape=self.input_shape,
            classes=self.num_classes,
            se_ratio=values["se_ratio"],
            se_options={"pooling": values["se_pooling"], "gate": values["se_gate"]},
            **extra,
        )
        compile_model(
            model,
            values["optimizer"],
            values["learning_rate"],
            self.epochs,
            self.steps_per_epoch,
            self.jit_compile,
        )
        # Create the optimizer's variables now, so that the weights keras-tuner checkpoints
        # (with the optimizer state) load back completely into a freshly built model.
        model.optimizer.build(model.trainable_variables)
        return model


def compile_model(
    model, optimizer, learning_rate, epochs=None, steps_per_epoch=None, jit_compile=True
):
    """The training recipe of `se-keras train` (se_keras.training) at a given peak rate."""
    from se_keras.training.config import TrainConfig
    from se_keras.training.schedule import WarmupSchedule

    recipe = TrainConfig()
    rate = float(learning_rate)
    if epochs is not None:
        warmup = steps_per_epoch if epochs > 1 else 0  # one warm-up epoch, as in the recipe
        rate = WarmupSchedule(rate, warmup, epochs * steps_per_epoch, recipe.schedule)
    if optimizer == "sgd":
        optimizer = keras.optimizers.SGD(
            rate, momentum=recipe.momentum, nesterov=True, weight_decay=recipe.weight_decay
        )
    elif optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(rate, weight_decay=recipe.weight_decay)
    else:
        raise ValueError(
            "Invalid value for hyper-parameter `optimizer`: expected 'sgd' or 'adamw'. "
            f"Received: optimizer={optimizer!r}"
        )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )


def _caller_fixed(hp, name):
    """The value of an `hp.Fixed(name, ...)` the caller put in `hp`, or None."""
    for declared in hp.space:
        if declared.name == name and isinstance(declared, keras_tuner.engine.hyperparameters.Fixed):
            return declared.value
    return None


def _check_count(name, value, minimum=2):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected an integer of at least {minimum}. "
            f"Received: {name}={value!r}"
        )
    return value
