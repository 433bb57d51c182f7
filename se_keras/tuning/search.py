"""`tune`: a resumable keras-tuner search over `SEHyperModel` on a se_keras.data pipeline.

Each trial trains on the data normalised for its own model's family (`PREPROCESS_MODE`:
"torch" for the ResNet and ShuffleNet families, "tf" for MobileNet), so the saved best model
takes the same input as `se-keras evaluate` and the family's `preprocess_input` give it.
"""

import contextlib
import dataclasses
import io
import json
import os
import time

import keras
import tensorflow as tf

from se_keras.tuning import space
from se_keras.tuning.hypermodel import SEHyperModel, keras_tuner

PROJECT = "search"  # keras-tuner's project folder inside the output folder
BEST_MODEL = "best_model.keras"
BEST_HYPERPARAMETERS = "best_hyperparameters.json"
OBJECTIVE = "val_accuracy"


class SearchFailed(RuntimeError):
    """No trial could be trained (or too many failed in a row)."""


@dataclasses.dataclass
class TuneResult:
    best_model: keras.Model
    best_trial_id: str
    best_score: float
    best_hyperparameters: dict  # the best trial's values, as the tuner reports them
    trials: list  # one dict per trial: trial_id, status, score, hyperparameters
    trials_run: int  # trials this call ran (an interrupted one it retried included)
    tuner: object


def validation_split(info):
    """The split scored by the search: `validation` when the dataset has one, else `test`
    (the bundled digits, cifar10: these have no validation split)."""
    return "validation" if "validation" in info.split_sizes else "test"


class _DataHyperModel(SEHyperModel):
    """Fits each trial on batches normalised for the trial's model family."""

    def __init__(self, datasets, **kwargs):
        super().__init__(**kwargs)
        self._datasets = datasets

    def fit(self, hp, model, *args, **kwargs):
        train, validation = self._datasets(hp.get("model"))
        # The training batches are shuffled by the pipeline (fit cannot shuffle a tf.data).
        return model.fit(train, *args, validation_data=validation, shuffle=False, **kwargs)


def _dataset_factory(config, info):
    from se_keras import applications, data

    cache = {}
    split = validation_split(info)

    def one_hot(images, labels):
        return images, tf.one_hot(labels, info.num_classes)

    def datasets(model_name):
        mode = applications.family_module(model_name).PREPROCESS_MODE
        if mode not in cache:
            preprocess = data.normalizer(mode)
            common = dict(
                image_size=config.image_size,
                batch_size=config.batch_size,
                preprocess=preprocess,
                data_dir=config.data_dir,
            )
            train = data.make_dataset(
                config.dataset,
                "train",
                training=True,
                seed=config.seed,
                drop_remainder=True,
                **common,
            )
            evaluate = data.make_dataset(config.dataset, split, training=False, **common)
            cache[mode] = (train.map(one_hot), evaluate.map(one_hot))
        return cache[mode]

    return datasets


def _reporting(base):
    class Tuner(base):
        """Counts the trials it runs, and calls `self.report(trial, seconds)` after each."""

        report = None
        trials_run = 0

        def on_trial_begin(self, trial):
            self._started = time.monotonic()
            super().on_trial_begin(trial)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            self.trials_run += 1
            if self.report is not None:
                self.report(trial, time.monotonic() - self._started)

    Tuner.__name__ = Tuner.__qualname__ = f"SE{base.__name__}"
    return Tuner


def make_tuner(kind, hypermodel, directory, max_trials, max_epochs, seed=0, hyperparameters=None):
    """A keras-tuner tuner of `kind` (random, bayesian, hyperband) maximising val_accuracy,
    kept in `directory/search`, reloading the trials already there (overwrite=False)."""
    common = dict(
        objective=keras_tuner.Objective(OBJECTIVE, "max"),
        seed=seed,
        hyperparameters=hyperparameters,
        directory=directory,
        project_name=PROJECT,
        overwrite=False,
    )
    classes = {
        "random": keras_tuner.RandomSearch,
        "bayesian": keras_tuner.BayesianOptimization,
        "hyperband": keras_tuner.Hyperband,
    }
    cls = _reporting(classes[kind])
    # keras-tuner prints "Reloading Tuner from ..." when it resumes; the caller reports that.
    with contextlib.redirect_stdout(io.StringIO()):
        if kind == "hyperband":
            # Brackets without end, so that `max_trials` alone bounds (and extends) a search.
            tuner = cls(hypermodel, max_epochs=max_epochs, hyperband_iterations=None, **common)
            tuner.oracle.max_trials = max_trials
        else:
            tuner = cls(hypermodel, max_trials=max_trials, **common)
    return tuner


def tune(config, output_dir, download=False, on_trial_end=None):
    """Search `config` in `output_dir`, resuming (or extending) a search there; save the best
    model (`best_model.keras`) and its hyper-parameters (`best_hyperparameters.json`).

    `on_trial_end(trial, seconds)` is called after each trial this call runs.
    Returns a `TuneResult`.
    """
    from se_keras import data

    config.check()
    info = data.dataset_info(config.dataset, config.data_dir, download)
    info.check_split("train")
    info.check_split(validation_split(info))
    info.check_batch_size(config.batch_size)
    config.claim(output_dir)  # only once the search can start: a refused one leaves nothing
    keras.utils.set_random_seed(config.seed)
    hypermodel = _DataHyperModel(
        _dataset_factory(config, info),
        input_shape=(config.image_size, config.image_size, 3),
        num_classes=info.num_classes,
        models=config.models,
        fixed=config.fixed,
        epochs=config.epochs,
        steps_per_epoch=info.split_sizes["train"] // config.batch_size,
        jit_compile=config.jit_compile,
    )
    tuner = make_tuner(
        config.tuner, hypermodel, output_dir, config.max_trials, config.epochs, config.seed
    )
    tuner.report = on_trial_end
    try:
        tuner.search(epochs=config.epochs, verbose=0)
    except RuntimeError as error:
        if "consecutive failures" not in str(error):
            raise
        # keras-tuner's message ends with the last failed trial's traceback.
        raise SearchFailed(f"the search stopped: {_last_line(str(error))}") from None
    trials = trial_records(tuner)
    # keras-tuner ranks the completed trials first, then pads the list with the others.
    ranked = tuner.oracle.get_best_trials(len(trials))
    best = next((t for t in ranked if t.status == "COMPLETED" and t.score is not None), None)
    if best is None:
        raise SearchFailed(
            f"no trial in {output_dir} completed"
            + (f" (the last one: {trials[-1]['message']})" if trials else "")
        )
    model = tuner.load_model(best)  # its best epoch's weights and optimizer state
    _save(model, best, output_dir)
    return TuneResult(
        model,
        best.trial_id,
        float(best.score),
        dict(best.hyperparameters.values),
        trials,
        tuner.trials_run,
        tuner,
    )


def trial_records(tuner):
    """Every trial in the search, in the order they were created."""
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
    return [
        {
            "trial_id": t.trial_id,
            "status": t.status,
            "hyperparameters": dict(t.hyperparameters.values),
            "score": None if t.score is None else float(t.score),
            "message": _last_line(t.message) if t.message else None,
        }
        for t in trials
    ]


def trial_table(trials):
    """Rows of strings: trial id, each hyper-parameter ("-": inactive for that model), score
    (or the trial's status when it did not complete)."""
    names = [n for n in space.NAMES if any(n in t["hyperparameters"] for t in trials)]
    rows = [("trial", *names, OBJECTIVE)]
    for t in trials:
        cells = [_cell(t["hyperparameters"].get(name)) for name in names]
        completed = t["status"] == "COMPLETED" and t["score"] is not None
        rows.append(
            (t["trial_id"], *cells, f"{t['score']:.4f}" if completed else t["status"].lower())
        )
    return rows


def progress_line(trial, seconds):
    """One line on a finished trial: its model and score, or why it failed."""
    if trial.status == "COMPLETED" and trial.score is not None:
        outcome = f"{OBJECTIVE} {trial.score:.4f}"
    else:
        outcome = f"{trial.status.lower()}: {_last_line(trial.message or '')}"
    return (
        f"trial {trial.trial_id} ({trial.hyperparameters.get('model')}): {outcome} [{seconds:.0f}s]"
    )


def _cell(value):
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _last_line(message):
    lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _save(model, trial, output_dir):
    path = os.path.join(output_dir, BEST_MODEL)
    model.save(path + ".partial.keras")
    os.replace(path + ".partial.keras", path)
    record = {
        "trial_id": trial.trial_id,
        "objective": OBJECTIVE,
        "score": float(trial.score),
        "hyperparameters": dict(trial.hyperparameters.values),
    }
    path = os.path.join(output_dir, BEST_HYPERPARAMETERS)
    with open(path + ".partial", "w") as file:
        json.dump(record, file, indent=2)
    os.replace(path + ".partial", path)
