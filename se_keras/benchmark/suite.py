"""Measure SE networks next to their base networks across runtimes; results as plain data."""

import dataclasses
import gc
import os
import sys

import numpy as np

from se_keras.benchmark import isolated, machine, networks, runtimes, timing
from se_keras.utils import timm_import
from se_keras.utils.validation import check_positive


@dataclasses.dataclass
class Settings:
    models: tuple = ("se_resnet50",)
    runtimes: tuple = runtimes.DEFAULT_RUNTIMES
    batch_sizes: tuple = (1, 32)
    compare: bool = True  # the base network, and the authors' PyTorch model where it exists
    rounds: int = 5  # interleaved timings per task; medians are reported
    threads: int = None  # intra-op threads of every runtime (default: all cores)
    image_size: int = None  # default: each model's own (224, 299 for the Inceptions)
    train_batch_size: int = 0  # > 0: also time an XLA training step at this batch size
    memory: bool = False  # peak memory per network and runtime (a process each)
    memory_batch_size: int = None  # default: the largest of `batch_sizes`
    cache_dir: str = None  # keep exported files here between runs
    min_seconds: float = 0.1  # repeat short calls within a round until this long

    def check(self):
        from se_keras import applications

        for model in self.models:
            applications.family_module(model)  # checks the name
        for name in self.runtimes:
            runtimes.parse_runtimes(name)
        for model in self.models:  # a PyTorch network asked for that does not exist
            se = networks.networks(model, compare=False)[0]
            for name in set(self.runtimes) & set(runtimes.OTHERS):
                if not runtimes.applies(name, se):
                    raise ValueError(
                        f"--runtime {name}: {runtimes.UNAVAILABLE[name]}, not for {model}. "
                        f"Received: --runtime {','.join(self.runtimes)}"
                    )
        for size in self.batch_sizes:
            check_positive("batch_size", size)
        check_positive("rounds", self.rounds)
        if self.threads is not None:
            check_positive("threads", self.threads)
        if self.image_size is not None and self.image_size < 32:
            raise ValueError(
                f"`image_size` must be at least 32. Received: image_size={self.image_size}"
            )
        if self.train_batch_size:
            check_positive("train_batch_size", self.train_batch_size)
        if self.memory_batch_size is not None:
            check_positive("memory_batch_size", self.memory_batch_size)


def run(settings, log=None):
    """Run the benchmark; returns a JSON-ready dict (see `report` for the tables)."""
    settings.check()
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    threads = settings.threads or os.cpu_count()
    tf_threads, wait_policy = runtimes.configure_threads(threads)
    artifacts = runtimes.Artifacts(settings.cache_dir, log)
    results = {
        "settings": dataclasses.asdict(settings),
        "machine": machine.describe(threads, tf_threads, wait_policy),
        "networks": [],
        "inference": [],
        "training": [],
        "memory": [],
        "gemm": [],
    }
    import tensorflow as tf

    # Every runner has its own tf.function over the same code, which TensorFlow would
    # report as retracing.
    level = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")
    try:
        for model in settings.models:
            _measure_model(model, settings, threads, artifacts, results, log)
    finally:
        tf.get_logger().setLevel(level)
        artifacts.cleanup()
    results["machine"]["load_average_after"] = timing.load_average()
    return results


def _measure_model(model, settings, threads, artifacts, results, log):
    from se_keras.utils.flops import count_macs

    rows = networks.networks(model, settings.image_size, settings.compare)
    names = list(settings.runtimes)
    if settings.compare:  # the PyTorch networks people would otherwise run
        if "torch" not in names and rows[0].has_reference and _torch_ready():
            names.append("torch")
        if "timm" not in names and rows[0].timm_arch and timm_import.load_timm() is not None:
            names.append("timm")
    built = {}
    for network in rows:
        built[network.label] = keras_model = network.build()
        macs = count_macs(keras_model)
        results["networks"].append(
            {
                **dataclasses.asdict(network),
                "parameters": int(sum(np.prod(w.shape) for w in keras_model.trainable_weights)),
                "macs": macs,
                "paper_macs": network.paper_macs,
                **(_timm_network(network, macs) if "timm" in names else {}),
            }
        )
    pairs = _pairs(rows, names)

    def exported(network, runtime, batch_size):
        if runtime not in runtimes.EXPORTS:
            return None
        return artifacts.get(runtime, network, batch_size)

    for batch_size in settings.batch_sizes:
        tasks, errors = {}, {}
        # The machine's own float32 GEMM, in the same rounds: the ceiling for the fractions.
        gemms = _gemm_tasks(threads, errors)
        tasks.update({(GEMM, library): run for library, (run, _) in gemms.items()})
        for network, runtime in pairs:
            try:
                tasks[network.label, runtime] = runtimes.load(
                    runtime,
                    network,
                    batch_size,
                    threads,
                    model=built[network.label],
                    path=exported(network, runtime, batch_size),
                )
            except Exception as error:  # one runtime failing must not end the run
                errors[network.label, runtime] = _one_line(error)
                log(f"{network.label} ({runtime}): failed: {_one_line(error)}")
        log(
            f"timing {model} at batch {batch_size}: {len(tasks)} tasks x {settings.rounds} "
            "rounds (interleaved)"
        )
        samples, failed, outputs = _interleave_guarded(tasks, settings)
        for library, (_, flop) in gemms.items():
            if (GEMM, library) in samples:
                seconds = samples.pop((GEMM, library))
                results["gemm"].append(
                    {
                        "model": model,
                        "batch_size": batch_size,
                        "library": library,
                        "size": machine.GEMM_SIZE,
                        "seconds": seconds,
                        "flop_per_s": flop / timing.median(seconds),
                    }
                )
        differences = _differences(rows, built, outputs, batch_size)
        for (label, runtime), seconds in samples.items():
            results["inference"].append(
                {
                    **_record(model, label, runtime, batch_size, seconds),
                    **differences.get((label, runtime), {}),
                }
            )
        for (label, runtime), message in {**errors, **failed}.items():
            results["inference"].append(
                {
                    "model": model,
                    "network": label,
                    "runtime": runtime,
                    "batch_size": batch_size,
                    "error": message,
                }
            )
        del tasks
        gc.collect()
    if settings.train_batch_size:
        _measure_training(model, rows, built, settings, results, log)
    if settings.memory:
        batch_size = settings.memory_batch_size or max(settings.batch_sizes)
        for network, runtime in pairs:
            log(f"peak memory: {network.label} ({runtime}, batch {batch_size})")
            entry = {
                "model": model,
                "network": network.label,
                "runtime": runtime,
                "batch_size": batch_size,
            }
            try:
                entry["peak_bytes"] = isolated.peak_memory(
                    runtime, network, batch_size, threads, exported(network, runtime, batch_size)
                )
            except Exception as error:
                entry["error"] = _one_line(error)
            results["memory"].append(entry)


def merge(*results):
    """One results dict from several runs (each keeps its own settings line in `runs`)."""
    merged = {
        "settings": results[0]["settings"],
        "machine": results[0]["machine"],
        "runs": [{"settings": r["settings"], "machine": r["machine"]} for r in results],
    }
    for key in ("networks", "inference", "training", "memory", "gemm"):
        merged[key] = [entry for r in results for entry in r.get(key, [])]
    return merged


def _pairs(rows, names):
    """(network, runtime) runtime by runtime, so an SE network and its base network are
    timed next to each other in every round."""
    return [
        (network, runtime)
        for runtime in names
        for network in rows
        if runtimes.applies(runtime, network)
    ]


def _timm_network(network, macs):
    """timm's architecture for `network` and its multiply-adds (the same as ours for timm's
    family; for the paper's models counted on our build of timm's layout)."""
    from se_keras import applications
    from se_keras.utils.flops import count_macs

    arch = network.timm_arch
    if arch is None:
        return {}
    if network.model != f"timm_{arch}":
        size = (network.image_size, network.image_size, 3)
        without_se = {} if network.role == "se" else {"se_ratio": None}
        timm_layout = applications.get_model(
            f"timm_{arch}", weights=None, input_shape=size, **without_se
        )
        macs = count_macs(timm_layout)
    return {"timm_arch": arch if network.role == "se" else f"{arch} without SE", "timm_macs": macs}


def _interleave_guarded(tasks, settings):
    """`timing.interleave`, after dropping the tasks whose first call fails. Returns
    `(samples, {key: error}, {key: the first call's output})`."""
    failed, outputs = {}, {}
    for key, task in list(tasks.items()):
        try:
            outputs[key] = task()  # warm-up: compiles, allocates
        except Exception as error:
            failed[key] = _one_line(error)
            del tasks[key]
    samples = timing.interleave(tasks, settings.rounds, warmup=0, min_seconds=settings.min_seconds)
    return samples, failed, outputs


GEMM = "GEMM"  # (GEMM, library): a GEMM's key among the tasks


def _gemm_tasks(threads, errors):
    try:
        return machine.gemm_tasks(threads)
    except ImportError as error:
        errors[GEMM, "numpy"] = _one_line(error)
        return {}


def _differences(rows, built, outputs, batch_size):
    """Per (network, runtime) of ours: the largest difference of its outputs from Keras' own
    (eager, float32) on the same batch, absolute and over the output scale (the largest
    |Keras output|, at least 1): what each runtime's precision costs, measured on this run's
    batch."""
    found = {}
    for network in rows:
        mine = {
            key: output
            for key, output in outputs.items()
            if key[0] == network.label and key[1] not in runtimes.OTHERS
        }
        if not mine:
            continue
        x = runtimes.images(network, batch_size)
        expected = np.asarray(built[network.label](x, training=False), dtype=np.float64)
        scale = max(1.0, float(np.max(np.abs(expected))))  # as the exports' verification
        for key, output in mine.items():
            difference = float(np.max(np.abs(np.asarray(output, np.float64) - expected)))
            found[key] = {"max_difference": difference, "relative_difference": difference / scale}
    return found


def _measure_training(model, rows, built, settings, results, log):
    import keras

    batch_size = settings.train_batch_size
    tasks = {}
    for network in rows:
        net = built[network.label]
        net.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            jit_compile=True,
        )
        x = runtimes.images(network, batch_size)
        y = np.random.default_rng(0).integers(0, net.output.shape[-1], batch_size)
        tasks[network.label] = lambda net=net, x=x, y=y: net.train_on_batch(x, y)
    log(f"timing {model} training steps (XLA) at batch {batch_size}")
    for label, seconds in timing.interleave(tasks, settings.rounds, warmup=2).items():
        results["training"].append(_record(model, label, "xla", batch_size, seconds))


def _record(model, label, runtime, batch_size, seconds):
    median = timing.median(seconds)
    return {
        "model": model,
        "network": label,
        "runtime": runtime,
        "batch_size": batch_size,
        "seconds": seconds,
        "median_s": median,
        "spread": timing.spread(seconds),
        "images_per_s": batch_size / median,
    }


def _one_line(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def _torch_ready():
    from se_keras.convert import reference

    return reference.load_senet_module() is not None
