"""The configuration of a search: defaults, checks, and its file in the output folder.

Keras-free, so that `se-keras --help` stays fast.
"""

import dataclasses
import json
import os

from se_keras.utils.validation import check_choice, check_positive

TUNERS = ("random", "bayesian", "hyperband")
CONFIG_FILE = "tune_config.json"
# What a re-run may change in an existing search: raising it runs the new trials only.
EXTENDABLE = ("max_trials",)


@dataclasses.dataclass
class TuneConfig:
    models: list = None  # candidate models; None: all of se_keras.tuning.space.MODELS
    fixed: dict = None  # hyper-parameters fixed to a value, e.g. {"se_ratio": 16}
    dataset: str = "digits"
    tuner: str = "random"
    max_trials: int = 10
    epochs: int = 3  # per trial (hyperband: the most epochs a trial trains)
    batch_size: int = 64
    image_size: int = 32
    seed: int = 0
    jit_compile: bool = True
    data_dir: str = None

    def check(self):
        from se_keras.tuning import space

        self.models = space.check_models(self.models)
        self.fixed = space.check_fixed(self.fixed, self.models) or None
        check_choice("tuner", self.tuner, TUNERS)
        for name in ("max_trials", "epochs", "batch_size"):
            check_positive(name, getattr(self, name))
        if not isinstance(self.image_size, int) or self.image_size < space.MIN_SIDE:
            raise ValueError(
                f"Invalid value for argument `image_size`: expected at least {space.MIN_SIDE}. "
                f"Received: image_size={self.image_size!r}"
            )
        return self

    def claim(self, output_dir):
        """Write this configuration to `output_dir`, or check that the search there is the
        same one (only `max_trials` may differ): a re-run resumes or extends it."""
        path = os.path.join(output_dir, CONFIG_FILE)
        mine = dataclasses.asdict(self)
        if os.path.exists(path):
            with open(path) as file:
                theirs = json.load(file)
            changed = sorted(
                k
                for k in set(mine) | set(theirs)
                if k not in EXTENDABLE and mine.get(k) != theirs.get(k)
            )
            if changed:
                raise ValueError(
                    f"{output_dir} holds a different search (differs in: {', '.join(changed)}); "
                    "use another --output-dir."
                )
        os.makedirs(output_dir, exist_ok=True)
        with open(path + ".partial", "w") as file:
            json.dump(mine, file, indent=2)
        os.replace(path + ".partial", path)


def parse_fixed(items):
    """`--fix NAME=VALUE` options -> {name: value}, or None. A value is an int, else a float,
    else the string (`se_gate=tanh`, `se_stages=3,4`)."""
    fixed = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        if not (sep and name and text):
            raise ValueError(
                f"--fix expects NAME=VALUE, e.g. --fix se_ratio=16. Received: --fix {item}"
            )
        fixed[name] = _number_or_text(text)
    return fixed or None


def _number_or_text(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
