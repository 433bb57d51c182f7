"""The configuration of a training run: defaults, checks, and its file in the output folder."""

import dataclasses
import json
import math
import os

from se_keras.utils.validation import check_choice, check_positive

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step")
STRATEGIES = ("none", "mirrored", "multiworker", "data_parallel")
EXPORTS = ("tflite", "none")
MAX_IMAGE_SIZE = 1024  # larger inputs exhaust the memory of any one machine this runs on


@dataclasses.dataclass
class TrainConfig:
    model: str = "se_resnet18"
    dataset: str = "digits"
    epochs: int = 6
    batch_size: int = 64
    image_size: int = 0  # 0: 32 for small images (<= 64 px), 224 otherwise
    optimizer: str = "sgd"
    learning_rate: float = 0.0  # 0: 0.1 x batch / 256 for SGD (the paper's 0.6 at 1024), 1e-3 AdamW
    momentum: float = 0.9
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    schedule: str = "cosine"
    warmup_epochs: int = 1
    se_ratio: int = 16
    mixed_precision: bool = False
    jit_compile: bool = True
    seed: int = 0
    strategy: str = "none"
    export: str = "tflite"
    data_dir: str = None
    weights: str = None  # a tag or weights file of `model` to fine-tune from (its classifier aside)
    # How the images are shown: a `se_keras.data.View`'s fields and a `normalizer` mode. A run
    # fine-tuning from a registered tag records the tag's own; None: the default view and the
    # family's normalisation.
    view: dict = None
    normalization: str = None

    def check(self):
        from se_keras import applications

        if self.model not in applications.list_models():
            raise ValueError(
                f"Unknown model {self.model!r}; expected one of {applications.list_models()}."
            )
        for name in ("epochs", "batch_size"):
            check_positive(name, getattr(self, name))
        if self.se_ratio is not None:
            check_positive("se_ratio", self.se_ratio, integer=False)
        if self.image_size and not 32 <= self.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(
                f"`image_size` must be between 32 and {MAX_IMAGE_SIZE} (0: the dataset's "
                f"default). Received: image_size={self.image_size}"
            )
        if not isinstance(self.warmup_epochs, int) or self.warmup_epochs < 0:
            raise ValueError(
                "`warmup_epochs` must be an integer >= 0. "
                f"Received: warmup_epochs={self.warmup_epochs!r}"
            )
        for name in ("learning_rate", "weight_decay", "label_smoothing", "momentum"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(
                    f"`{name}` must be a finite number. Received: {name}={getattr(self, name)}"
                )
        if self.learning_rate < 0 or self.weight_decay < 0 or not 0 <= self.label_smoothing < 1:
            raise ValueError(
                "learning_rate and weight_decay must be >= 0 and label_smoothing in [0, 1). "
                f"Received: learning_rate={self.learning_rate}, weight_decay={self.weight_decay}, "
                f"label_smoothing={self.label_smoothing}"
            )
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("strategy", self.strategy, STRATEGIES)
        check_choice("export", self.export, EXPORTS)
        self._check_view()
        tags = applications.tags(self.model)
        if (
            self.weights is not None
            and self.weights not in tags
            and not os.path.isfile(self.weights)
        ):
            raise ValueError(
                f"`weights` must be a tag of {self.model} ({', '.join(sorted(tags)) or 'none'}) "
                f"or a weights file that exists. Received: weights={self.weights!r}"
            )
        return self

    def _check_view(self):
        from se_keras import data

        if self.view is not None:
            try:
                data.View(**self.view)  # which checks its values
            except TypeError:
                raise ValueError(
                    "`view` must be a dict of `View` fields (crop, interpolation, torchvision). "
                    f"Received: view={self.view!r}"
                ) from None
        if self.normalization is not None:
            check_choice("normalization", self.normalization, data.pipeline.MODES)

    def resolved(self, info):
        """This configuration with its defaults' placeholders (`image_size=0`,
        `learning_rate=0.0`) replaced by the values a run on `info` uses."""
        return dataclasses.replace(
            self,
            image_size=self.image_size or (32 if info.small else 224),
            learning_rate=self.peak_learning_rate(),
        )

    def peak_learning_rate(self):
        if self.learning_rate:
            return self.learning_rate
        return 0.1 * self.batch_size / 256 if self.optimizer == "sgd" else 1e-3

    def claim(self, output_dir, write=True):
        """Write this configuration to `output_dir`, or check it equals the one there
        (a re-run resumes; a different run must not mix into the same folder). With
        `write=False` (a multi-worker run's workers other than the chief) it only checks."""
        path = os.path.join(output_dir, "config.json")
        mine = dataclasses.asdict(self)
        if os.path.exists(path):
            with open(path) as file:
                theirs = json.load(file)
            changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            if changed:
                raise ValueError(
                    f"{output_dir} holds a different run's configuration (differs in: "
                    f"{', '.join(changed)}); use another --output-dir."
                )
            return
        if not write:
            return
        os.makedirs(output_dir, exist_ok=True)
        with open(path + ".partial", "w") as file:
            json.dump(mine, file, indent=2)
        os.replace(path + ".partial", path)
