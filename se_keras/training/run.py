"""A complete, resumable training run: data, model, fit under XLA, export, summary."""

import contextlib
import csv
import dataclasses
import functools
import json
import os
import tempfile
import warnings

import keras
import numpy as np

from se_keras.training import loop
from se_keras.training.config import TrainConfig
from se_keras.training.schedule import WarmupSchedule
from se_keras.utils import files

CHECKPOINT = "checkpoints/last.keras"
STATE = "checkpoints/state.json"
FINAL = "model.keras"


class _EpochCheckpoint(keras.callbacks.Callback):
    """After each epoch: the whole model (with optimizer state), then `state.json` naming
    that epoch. Both are written atomically, the state last, so a run killed at any point
    resumes from the last epoch whose checkpoint is complete."""

    def __init__(self, output_dir):
        super().__init__()
        self.output_dir = output_dir

    def on_epoch_end(self, epoch, logs=None):
        path = os.path.join(self.output_dir, CHECKPOINT)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.model.save(path + ".partial.keras")
        os.replace(path + ".partial.keras", path)
        _write_json(os.path.join(self.output_dir, STATE), {"completed_epoch": epoch})


def _write_json(path, value):
    with open(path + ".partial", "w") as file:
        json.dump(value, file, indent=2)
    os.replace(path + ".partial", path)


def _resume_path(output_dir, done, epochs):
    """The saved model a re-run continues from: the last epoch's checkpoint, or for a
    finished run, whose checkpoint went once `model.keras` was written, that file."""
    final = os.path.join(output_dir, FINAL)
    if done >= epochs and os.path.exists(final):
        return final
    return os.path.join(output_dir, CHECKPOINT)


def _save_final(model, write_dir):
    """`model.keras`, written atomically; then the checkpoint, the same model a second time,
    goes (`state.json` stays: a re-run knows the run is finished and loads `model.keras`)."""
    with files.atomic_path(os.path.join(write_dir, FINAL)) as partial:
        model.save(partial)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(write_dir, CHECKPOINT))


def _completed_epochs(output_dir):
    """Epochs finished by an earlier, interrupted run of the same configuration."""
    state = os.path.join(output_dir, STATE)
    if not os.path.exists(state):
        return 0
    with open(state) as file:
        return json.load(file)["completed_epoch"] + 1


def _trim_history(path, epochs):
    """Keep the CSV rows of the first `epochs` epochs: a run killed between writing a row
    and its checkpoint repeats that epoch, and must not repeat the row."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    kept = rows[:1] + [row for row in rows[1:] if int(row[0]) < epochs]
    with open(path + ".partial", "w", newline="") as file:
        csv.writer(file).writerows(kept)
    os.replace(path + ".partial", path)


def distribution_scope(name):
    """The scope a model is built and compiled in, for `--strategy name`."""
    return _scope(distribution_strategy(name))


def _scope(strategy):
    return contextlib.nullcontext() if strategy is None else strategy.scope()


def distribution_strategy(name):
    """The tf.distribute strategy of `--strategy name` (None on the other backends).

    `mirrored` (local GPUs) and `multiworker` (configured by TF_CONFIG) are tf.distribute
    strategies, on the TensorFlow backend; `data_parallel` is Keras' own distribution API
    (`keras.distribution.DataParallel` over all local devices), on the JAX backend.
    """
    backend = keras.backend.backend()
    needs = {"mirrored": "tensorflow", "multiworker": "tensorflow", "data_parallel": "jax"}
    if name in needs and backend != needs[name]:
        raise ValueError(
            f"--strategy {name} needs KERAS_BACKEND={needs[name]} (this is {backend})."
        )
    if name == "data_parallel":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    if backend != "tensorflow":
        return None
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()  # the default, single-device strategy


def _tag_preprocessing(model_name, weights):
    """The `WeightsInfo.preprocessing` of `weights` when it is a tag registered for
    `model_name` (None for a file, a Hub id or keras' base network)."""
    from se_keras import applications

    registered = applications.tags(model_name) - {applications.BASE_TAG}
    if isinstance(weights, str) and weights in registered:
        return applications.get_weights(model_name, weights).preprocessing
    return None


def _with_tag_view(config, preprocessing):
    """`config` showing images as a weights tag's `preprocessing` says (its crop,
    interpolation, mean and std), unless it names a view and normalisation itself."""
    from se_keras import data

    if preprocessing is None or config.view is not None or config.normalization is not None:
        return config
    view = data.pipeline.tag_view(preprocessing)
    mode = data.pipeline.tag_mode(preprocessing)
    return dataclasses.replace(config, view=dataclasses.asdict(view), normalization=mode)


def _shown_as(model_name, view, normalization):
    """The `View` and the tf.data normaliser of a run's recorded `view` and
    `normalization` (None: the default view, the family's normalisation)."""
    from se_keras import applications, data

    mode = normalization or applications.family_module(model_name).PREPROCESS_MODE
    # Normalise with TensorFlow ops inside tf.data, whatever the Keras backend.
    return data.View(**(view or {})), data.normalizer(mode)


def _datasets(config, info):
    from se_keras import data

    view, preprocess = _shown_as(config.model, config.view, config.normalization)
    size = config.resolved(info).image_size
    # Workers share out each global batch: they must all produce the batches in one order.
    deterministic = config.strategy == "multiworker"

    def one_hot(images, labels):
        return images, keras.ops.one_hot(labels, info.num_classes)

    train = data.make_dataset(
        config.dataset,
        "train",
        size,
        config.batch_size,
        preprocess,
        training=True,
        seed=config.seed,
        data_dir=config.data_dir,
        drop_remainder=True,
        deterministic=deterministic,
        view=view,
    ).map(one_hot)
    test = data.make_dataset(
        config.dataset,
        "test",
        size,
        config.batch_size,
        preprocess,
        training=False,
        data_dir=config.data_dir,
        deterministic=deterministic,
        view=view,
    ).map(one_hot)
    return train, test, size


def build_model(config, num_classes, size, steps_per_epoch):
    """The configured model, compiled with the run's optimizer, schedule and loss."""
    from se_keras import applications
    from se_keras.applications import base_weights

    model = applications.get_model(
        config.model,
        weights=None,
        input_shape=(size, size, 3),
        classes=num_classes,
        se_ratio=config.se_ratio,
    )
    if config.weights is not None:
        # Fine-tuning: the pretrained network without its classifier, copied by layer name
        # (SE layers included); the classifier for this dataset's classes starts fresh.
        backbone = applications.get_model(
            config.model,
            weights=config.weights,
            include_top=False,
            input_shape=(size, size, 3),
            se_ratio=config.se_ratio,
        )
        base_weights.copy_weights(backbone, model, "name")
    _compile(model, config, steps_per_epoch)
    return model


def _compile(model, config, steps_per_epoch):
    schedule = WarmupSchedule(
        config.peak_learning_rate(),
        config.warmup_epochs * steps_per_epoch,
        config.epochs * steps_per_epoch,
        config.schedule,
    )
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(
            schedule, momentum=config.momentum, nesterov=True, weight_decay=config.weight_decay
        )
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(k=5, name="top5"),
        ],
        jit_compile=config.jit_compile and not _uses_tf_distribute(config),
    )


def _uses_tf_distribute(config):
    """XLA-compiled steps cannot place tf.distribute's mirrored variables (TensorFlow's
    "tf.Variable on a different device" limitation): such runs train without XLA."""
    if config.strategy in ("mirrored", "multiworker") and config.jit_compile:
        warnings.warn(
            f"--strategy {config.strategy}: training without XLA (jit_compile).", stacklevel=2
        )
        return True
    return False


def train(config, output_dir, download=False, progress=None):
    """Train `config` into `output_dir`, resuming an interrupted run there. Returns the summary.

    `download=True` lets tensorflow-datasets fetch a dataset that is not prepared yet;
    `progress(message)`, if given, hears what the run does besides fitting (resuming, saving,
    exporting).
    """
    from se_keras import data

    config.check()
    # First: MultiWorkerMirroredStrategy must exist before TensorFlow runs any operation.
    strategy = distribution_strategy(config.strategy)
    # Only the chief writes into `output_dir`: TF_CONFIG's chief or worker 0 under multiworker.
    chief = strategy is None or strategy.extended.should_checkpoint
    info = data.dataset_info(config.dataset, config.data_dir, download)
    info.check_split("train")
    info.check_split("test")
    info.check_batch_size(config.batch_size)
    # The values used, not the defaults' placeholders, are what config.json records; a tag
    # to fine-tune from shows its images as its weights saw them.
    config = _with_tag_view(config.resolved(info), _tag_preprocessing(config.model, config.weights))
    # Only once the run can start: a refused run leaves nothing.
    config.claim(output_dir, write=chief)
    keras.utils.set_random_seed(config.seed)
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    train_data, test_data, size = _datasets(config, info)
    steps = info.split_sizes["train"] // config.batch_size
    new_model = functools.partial(build_model, config, info.num_classes, size, steps)
    # The other workers resume from the chief's checkpoint, and write theirs (each save, like
    # every step, has to run on all workers) into a folder dropped at the end.
    folder = (
        contextlib.nullcontext(output_dir)
        if chief
        else tempfile.TemporaryDirectory(prefix="se-keras-worker-")
    )
    say = (progress or (lambda message: None)) if chief else (lambda message: None)
    with folder as write_dir, data.pipeline.naming_unreadable_images(config.dataset):
        return _run(config, strategy, output_dir, write_dir, train_data, test_data, new_model, say)


def _run(config, strategy, output_dir, write_dir, train_data, test_data, new_model, say):
    """Fit (resuming from `output_dir`), evaluate, and, when `write_dir` is `output_dir`,
    plot, export and write the summary there."""
    done = _completed_epochs(output_dir)
    if done >= config.epochs:
        say(f"{output_dir} holds a finished run ({done} epochs): evaluating and exporting again")
    elif done:
        say(f"resuming {output_dir} from epoch {done + 1} of {config.epochs}")
    history = os.path.join(write_dir, "history.csv")
    _trim_history(history, done)
    with _scope(strategy):
        if done:
            model = keras.saving.load_model(_resume_path(output_dir, done, config.epochs))
        else:
            model = new_model()
    if done < config.epochs:
        loop.fit(
            model,
            train_data,
            config.epochs,
            initial_epoch=done,
            validation_data=test_data,
            callbacks=[
                keras.callbacks.CSVLogger(history, append=True),
                keras.callbacks.TensorBoard(os.path.join(write_dir, "logs")),
                _EpochCheckpoint(write_dir),
            ],
        )
    say("evaluating on the test split and saving model.keras")
    results = loop.evaluate(model, test_data)
    _save_final(model, write_dir)
    summary = {
        "model": config.model,
        "dataset": config.dataset,
        "epochs": config.epochs,
        "test_accuracy": float(results["accuracy"]),
        "test_top5": float(results["top5"]),
        "exported": {},
    }
    if write_dir != output_dir:
        return summary
    plot_curves(history, os.path.join(output_dir, "curves.png"))
    if config.export == "tflite":
        say("exporting model.tflite and measuring it on the test split")
        summary["exported"]["tflite"] = _export_tflite(model, test_data, output_dir)
    _write_json(os.path.join(output_dir, "summary.json"), summary)
    return summary


def _export_tflite(model, test_data, output_dir):
    from se_keras.export import tflite

    path = tflite.convert(model, os.path.join(output_dir, "model.tflite"))
    runner = tflite.interpreter(path)
    correct = total = 0
    for images, labels in test_data:
        predictions = tflite.predict(runner, np.asarray(images))
        correct += int((predictions.argmax(-1) == np.asarray(labels).argmax(-1)).sum())
        total += len(predictions)
    return {"path": os.path.relpath(path, output_dir), "accuracy": correct / total}


def plot_curves(history_csv, path):
    """Loss and accuracy per epoch (train and test) from the CSV log, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(history_csv, newline="") as file:
        rows = list(csv.DictReader(file))
    epochs = [int(row["epoch"]) + 1 for row in rows]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for prefix, label in (("", "train"), ("val_", "test")):
            axis.plot(
                epochs, [float(row[prefix + metric]) for row in rows], marker="o", label=label
            )
        axis.set(xlabel="epoch", ylabel=metric, title=metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def evaluate(model_name, weights, dataset, batch_size=64, image_size=0, data_dir=None):
    """Top-1 and top-5 accuracy of `model_name` with `weights` on the test split of `dataset`.

    A registered tag's images are shown as its weights were evaluated: at its test input
    size (unless `image_size` is given), with its crop, interpolation and normalisation; a
    `model.keras` of `se-keras train` as its run's test split was (at its size by default).
    """
    from se_keras import applications, data

    info = data.dataset_info(dataset, data_dir)
    preprocessing = _tag_preprocessing(model_name, weights)
    # A model.keras of a run: its test split's size and view.
    run = (_run_config(weights) if str(weights).endswith(".keras") else None) or {}
    config = TrainConfig(
        model=model_name,
        dataset=dataset,
        batch_size=batch_size,
        image_size=image_size
        or run.get("image_size", 0)
        or (preprocessing or {}).get("input_size", 0),
        data_dir=data_dir,
        view=run.get("view"),
        normalization=run.get("normalization"),
    )
    config = _with_tag_view(config, preprocessing).check()
    _, test_data, size = _datasets(config, info)
    if str(weights).endswith(".keras"):
        model = files.load_keras_file(weights)
        if not model.name.startswith(model_name):
            raise ValueError(
                f"{weights} holds the model {model.name!r}, not {model_name}. "
                f"Received: weights={weights!r}"
            )
    else:
        model = applications.get_model(
            model_name, weights=weights, input_shape=(size, size, 3), classes=info.num_classes
        )
    # Keras 3 refuses `evaluate` without a loss; whatever the file was compiled with (if at
    # all), the figures are these two metrics.
    model.compile(
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(k=5, name="top5"),
        ],
    )
    with data.pipeline.naming_unreadable_images(dataset):
        results = model.evaluate(test_data, return_dict=True, verbose=0)
    return {"top1": float(results["accuracy"]), "top5": float(results["top5"])}


def _run_config(model_path):
    """The config.json of the run `model_path` was written by (`model.keras` or a checkpoint
    inside its output folder), or None outside a run folder."""
    run_dir = os.path.dirname(os.path.abspath(model_path))
    if os.path.basename(run_dir) == os.path.dirname(CHECKPOINT):
        run_dir = os.path.dirname(run_dir)
    config_path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(config_path):
        return None
    with open(config_path) as file:
        return json.load(file)


def load_run(model_path):
    """A model written by `train` (`model.keras` or a checkpoint inside its run folder) with
    what it takes to use it: `(model, class_names, inputs)`, where `inputs(paths)` turns image
    files into a batch preprocessed as the run's test split was."""
    from se_keras import data

    config = _run_config(model_path)
    if config is None:
        raise ValueError(
            f"{model_path} is not in the output folder of `se-keras train` (no config.json "
            "beside it), so its classes and preprocessing are unknown. "
            f"Received: weights={model_path!r}"
        )
    model = files.load_keras_file(model_path)
    info = data.dataset_info(config["dataset"], config.get("data_dir"))
    size = model.input.shape[1]
    # Older runs' config.json has no view: they were shown the default one.
    view, preprocess = _shown_as(config["model"], config.get("view"), config.get("normalization"))
    names = info.class_names or tuple(str(i) for i in range(info.num_classes))

    def inputs(paths):
        return data.pipeline.evaluation_images(paths, size, info.small, preprocess, view)

    return model, names, inputs
