"""What is measured: each SE network next to the network a user would otherwise pick."""

import dataclasses

# The keras.applications network each SE model extends. Families keras does not ship
# (ResNeXt, ShuffleNet, SENet-154, BN-Inception, ResNet-18/34) are compared with our own
# builder at `se_ratio=None`, which for the families above builds exactly keras' network.
KERAS_BASES = {
    "se_resnet50": "ResNet50",
    "se_resnet101": "ResNet101",
    "se_resnet152": "ResNet152",
    "se_inception_v3": "InceptionV3",
    "se_inception_resnet_v2": "InceptionResNetV2",
    "se_mobilenet": "MobileNet",
    "se_mobilenet_v2": "MobileNetV2",
    "se_vgg16": "VGG16",
    "se_vgg19": "VGG19",
}

# Multiply-adds the paper states (its "GFLOPs"), SE network and its baseline (PAPER.md).
PAPER_MACS = {
    "se_resnet50": (3.87e9, 3.86e9),
    "se_resnet101": (7.60e9, 7.58e9),
    "se_resnet152": (11.32e9, 11.30e9),
    "se_resnext50": (4.25e9, 4.24e9),
    "se_resnext101": (8.00e9, 7.99e9),
    "se_vgg16": (15.48e9, 15.47e9),
    "se_bn_inception": (2.04e9, 2.03e9),
    "se_inception_resnet_v2": (11.76e9, 11.75e9),
    "se_mobilenet": (572e6, 569e6),
    "se_shufflenet": (142e6, 140e6),
    "senet154": (20.7e9, None),
}


# timm's nearest architecture to each of the paper's models: the same widths and depths in
# timm's ResNet-B layout (stride on the 3x3, SE width rounded to 8; see the README). timm's
# own family (`timm_*`) is timed against the very architecture it reproduces.
TIMM_COUNTERPARTS = {
    "se_resnet18": "seresnet18",
    "se_resnet34": "seresnet34",
    "se_resnet50": "seresnet50",
    "se_resnet101": "seresnet101",
    "se_resnet152": "seresnet152",
    "se_resnext50": "seresnext50_32x4d",
    "se_resnext101": "seresnext101_32x4d",
    "senet154": "senet154",
}


@dataclasses.dataclass(frozen=True)
class Network:
    model: str  # the SE model this row belongs to (registry name)
    role: str  # "se" or "base"
    label: str  # what the tables print
    image_size: int  # input side (the model's default unless asked otherwise)

    def build(self):
        """The Keras model, with seeded random weights (timing does not depend on them),
        ending in logits: random weights give near-uniform probabilities, whose differences
        between runtimes would say nothing about their precision."""
        import keras

        from se_keras import applications

        keras.utils.set_random_seed(0)
        common = {
            "weights": None,
            "input_shape": (self.image_size, self.image_size, 3),
            "classifier_activation": None,
        }
        if self.role == "se":
            return applications.get_model(self.model, **common)
        if self.from_keras:
            return getattr(keras.applications, KERAS_BASES[self.model])(**common)
        return applications.get_model(self.model, se_ratio=None, **common)

    @property
    def from_keras(self):
        """Whether this is a keras.applications network (not one of our builders)."""
        return self.role == "base" and self.model in KERAS_BASES

    @property
    def paper_macs(self):
        """The paper's multiply-adds (at the model's default input size only), or None."""
        if self.image_size != default_size(self.model):
            return None
        macs = PAPER_MACS.get(self.model, (None, None))
        return macs[0] if self.role == "se" else macs[1]

    @property
    def has_reference(self):
        """Whether the authors' PyTorch network exists for this row."""
        from se_keras.convert import reference

        return self.role == "se" and self.model in reference.REFERENCE_BUILDERS

    @property
    def timm_arch(self):
        """timm's architecture timed next to this row (its base rows: the same without SE),
        or None."""
        if self.model.startswith("timm_"):
            return self.model.removeprefix("timm_")
        return TIMM_COUNTERPARTS.get(self.model)


def default_size(model):
    """The builder's default input side (299 for the Inceptions, else 224)."""
    from se_keras import applications

    return applications.entry(model).default_size


def networks(model, image_size=None, compare=True):
    """The SE network `model` and, with `compare`, its base network."""
    size = default_size(model)  # (and checks the name)
    size = image_size or size
    rows = [Network(model, "se", model, size)]
    if compare:
        base = (
            f"{KERAS_BASES[model]} (keras.applications)"
            if model in KERAS_BASES
            else f"{model} se_ratio=None"
        )
        rows.append(Network(model, "base", base, size))
    return rows
