"""`SEBackbone`: an se-keras network without its classifier, as a keras-hub `Backbone`."""

import contextlib

import keras
import keras_hub

from se_keras import applications


@keras.saving.register_keras_serializable(package="se_keras")
class SEBackbone(keras_hub.models.Backbone):
    """The features of `se_keras.applications.get_model(model_name, include_top=False,
    input_shape=image_shape, **options)`, as a keras-hub backbone (its layers, names and
    weights are the builder's).

    Args:
        model_name: a registry name, e.g. `"se_resnet50"` (or an alias such as timm's
            `"seresnet50"`).
        image_shape: the input's shape, e.g. `(224, 224, 3)`; `(None, None, 3)` for any
            size, where the model allows it.
        options: the builder's own arguments (`se_ratio`, `se_options`, widths).
        dtype: the dtype policy of its layers (keras-hub's convention).
    """

    def __init__(self, model_name, image_shape=(None, None, 3), options=None, dtype=None, **kwargs):
        options = dict(options or {})
        with _dtype_policy(dtype):
            network = applications.get_model(
                model_name,
                include_top=False,
                weights=None,  # the preset's own are loaded into it
                input_shape=tuple(image_shape),
                **options,
            )
        super().__init__(inputs=network.input, outputs=network.output, dtype=dtype, **kwargs)
        self.model_name = applications.entry(model_name).name
        self.image_shape = tuple(image_shape)
        self.options = options

    def get_config(self):
        return {
            **super().get_config(),
            "model_name": self.model_name,
            "image_shape": self.image_shape,
            "options": self.options,
        }


@contextlib.contextmanager
def _dtype_policy(dtype):
    """The builder's layers take Keras' global dtype policy: `dtype`'s while they are made."""
    if dtype is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(keras.dtype_policies.get(dtype))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
