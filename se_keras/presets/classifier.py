"""keras-hub's ImageClassifier for se-keras models: the task, its preprocessor and the image
converter that carries the weights' view (size, crop, interpolation, mean and std)."""

import math

import keras
import keras_hub

from se_keras import applications
from se_keras.presets.backbone import SEBackbone

# ImageConverter arguments that SEImageConverter derives from its own (a saved config has them).
_DERIVED = ("scale", "offset", "antialias", "crop_to_aspect_ratio", "pad_to_aspect_ratio")


@keras.saving.register_keras_serializable(package="se_keras")
class SEImageConverter(keras_hub.layers.ImageConverter):
    """Raw RGB images in [0, 255] as the weights saw ImageNet: the shorter side resized to
    `floor(size / crop_pct)`, a centre crop of `size` x `size` (torchvision's and timm's
    Resize + CenterCrop), then `(x / 255 - mean) / std`, channels reversed when
    `channel_order="bgr"` (Caffe's order, for `mode="caffe"` models).

    Args:
        image_size: `(size, size)`, the model's input side.
        crop_pct: the centre crop's share of the resized shorter side.
        interpolation: `"bilinear"` or `"bicubic"` (antialiased, as PIL's).
        mean, std: per RGB channel, on [0, 1].
        channel_order: `"rgb"` or `"bgr"`, the order the model takes.
    """

    backbone_cls = SEBackbone

    def __init__(
        self,
        image_size=(224, 224),
        crop_pct=0.875,
        interpolation="bilinear",
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        channel_order="rgb",
        **kwargs,
    ):
        for derived in _DERIVED:
            kwargs.pop(derived, None)
        height, width = image_size
        if height != width or not 0 < crop_pct <= 1 or channel_order not in ("rgb", "bgr"):
            raise ValueError(
                "SEImageConverter takes a square `image_size`, `crop_pct` in (0, 1] and "
                "`channel_order` 'rgb' or 'bgr'. Received: "
                f"image_size={image_size!r}, crop_pct={crop_pct!r}, "
                f"channel_order={channel_order!r}"
            )
        super().__init__(
            image_size=(height, width),
            scale=[1 / (255 * s) for s in std],
            offset=[-m / s for m, s in zip(mean, std)],
            interpolation=interpolation,
            antialias=True,
            **kwargs,
        )
        self.resizing = _ResizeAndCrop(height, crop_pct, interpolation, self.data_format)
        self.crop_pct, self.mean, self.std = crop_pct, tuple(mean), tuple(std)
        self.channel_order = channel_order

    def _call_python(self, inputs):
        images = super()._call_python(inputs)
        if self.channel_order == "rgb":
            return images
        return images[..., ::-1] if self.data_format == "channels_last" else images[..., ::-1, :, :]

    def get_config(self):
        config = super().get_config()
        for derived in _DERIVED:
            config.pop(derived, None)
        return {
            **config,
            "crop_pct": self.crop_pct,
            "mean": self.mean,
            "std": self.std,
            "channel_order": self.channel_order,
        }


class _ResizeAndCrop:
    """Resize + CenterCrop in a form that runs in tf.data and on any backend: Keras'
    Resizing of the centred square of the shorter side to `floor(size / crop_pct)` (the
    window that resizing the shorter side first would give), then the centre `size` x `size`,
    its offset rounded as torchvision and `se-keras predict` round it."""

    def __init__(self, size, crop_pct, interpolation, data_format):
        self.height = self.width = size  # read by ImageConverter's `image_size`
        resized = math.floor(size / crop_pct + 1e-6)  # timm's floor(size / crop_pct)
        self.square = keras.layers.Resizing(
            resized,
            resized,
            interpolation=interpolation,
            crop_to_aspect_ratio=True,
            antialias=True,
            data_format=data_format,
        )
        self.window = slice(round((resized - size) / 2), round((resized - size) / 2) + size)
        self.channels_last = data_format == "channels_last"

    def __call__(self, images):
        images, window = self.square(images), self.window
        if self.channels_last:
            return images[..., window, window, :]
        return images[..., window, window]


@keras.saving.register_keras_serializable(package="se_keras")
class SEImageClassifierPreprocessor(keras_hub.models.ImageClassifierPreprocessor):
    backbone_cls = SEBackbone
    image_converter_cls = SEImageConverter


@keras.saving.register_keras_serializable(package="se_keras")
class SEImageClassifier(keras_hub.models.ImageClassifier):
    """An se-keras model as a keras-hub ImageClassifier: the backbone, then the head its
    builder makes with `include_top=True` (keras' pooling + dense, SE-VGG's fully connected
    layers, SE-MobileNet's 1x1 convolution), so that it is that model, weights included.

    Args:
        backbone: an `SEBackbone`.
        num_classes: classes of the head.
        preprocessor: an `SEImageClassifierPreprocessor`, or None.
        activation: of the head: None (logits, keras-hub's default) or `"softmax"`.
    """

    backbone_cls = SEBackbone
    preprocessor_cls = SEImageClassifierPreprocessor

    def __init__(self, backbone, num_classes=1000, preprocessor=None, activation=None, **kwargs):
        # ImageClassifier's constructor would add its own pooling and dense head; Task's
        # takes the graph as it is. Attributes first: Task's compile() reads `activation`.
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.num_classes, self.activation = num_classes, activation
        family = applications.family_module(backbone.model_name).FAMILY
        inputs = backbone.input
        outputs = family.classifier(
            backbone(inputs),
            applications.entry(backbone.model_name),
            backbone.options,
            num_classes,
            activation,
        )
        keras_hub.models.Task.__init__(self, inputs=inputs, outputs=outputs, **kwargs)

    def get_config(self):
        config = keras_hub.models.Task.get_config(self)
        return {**config, "num_classes": self.num_classes, "activation": self.activation}
