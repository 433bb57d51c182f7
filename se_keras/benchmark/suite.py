"""Measure SE networks next to their base networks across runtimes; results as plain data."""

import dataclasses
import gc
import os
import platform
import sys

import numpy as np

from se_keras.benchmark import isolated, networks, runtimes, timing
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
        "machine": _machine(threads, tf_threads, wait_policy),
        "networks": [],
        "inference": [],
        "training": [],
        "memory": [],
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
    built = {}
    for network in rows:
        built[network.label] = keras_model = network.build()
        results["networks"].append(
            {
                **dataclasses.asdict(network),
                "parameters": int(sum(np.prod(w.shape) for w in keras_model.trainable_weights)),
                "macs": count_macs(keras_model),
                "paper_macs": network.paper_macs,
            }
        )
    names = list(settings.runtimes)
    if settings.compare and "torch" not in names and rows[0].has_reference and _torch_ready():
        names.append("torch")
    pairs = _pairs(rows, names)

    def exported(network, runtime, batch_size):
        if runtime not in runtimes.EXPORTS:
            return None
        return artifacts.get(runtime, network, batch_size)

    for batch_size in settings.batch_sizes:
        tasks, errors = {}, {}
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
        samples, failed = _interleave_guarded(tasks, settings)
        for (label, runtime), seconds in samples.items():
            results["inference"].append(_record(model, label, runtime, batch_size, seconds))
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
    for key in ("networks", "inference", "training", "memory"):
        merged[key] = [entry for r in results for entry in r[key]]
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


def _interleave_guarded(tasks, settings):
    """`timing.interleave`, after dropping the tasks whose first call fails."""
    failed = {}
    for key, task in list(tasks.items()):
        try:
            task()  # warm-up: compiles, allocates
        except Exception as error:
            failed[key] = _one_line(error)
            del tasks[key]
    samples = timing.interleave(tasks, settings.rounds, warmup=0, min_seconds=settings.min_seconds)
    return samples, failed


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


def _machine(threads, tf_threads, wait_policy):
    import importlib.metadata

    versions = {}
    packages = ("tensorflow", "keras", "ai-edge-litert", "onnxruntime", "tf2onnx", "openvino")
    for package in (*packages, "torch"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads,
        "tensorflow_threads": tf_threads,
        "torch_omp_wait_policy": wait_policy,
        "int8_dot_product": int8_dot_product(),
        "instruction_sets": instruction_sets(),
        "python": platform.python_version(),
        "versions": versions,
        "load_average_before": timing.load_average(),
    }


# Instructions that multiply-add four int8 pairs into an int32 lane (x86 VNNI and AMX, ARM
# dot product and matrix multiply). Without them XNNPACK's int8 kernels widen to int16 first
# and do about as many multiply-adds per instruction as its float32 ones.
INT8_DOT_PRODUCT = ("avx512_vnni", "avx_vnni", "avx_vnni_int8", "amx_int8", "asimddp", "i8mm")


# The vector and matrix instructions that decide which precision is fast here (the flag
# names of /proc/cpuinfo): float32 FMA width, int8 dot products, bfloat16 arithmetic.
INSTRUCTION_SETS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512F",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX-512 BF16",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
    "asimddp": "ARM dot product",
    "i8mm": "ARM int8 matrix multiply",
    "bf16": "ARM BF16",
}


def _cpu_flags(cpuinfo):
    """The first `flags` (x86) or `Features` (ARM) line of `cpuinfo` as a set; None where it
    cannot be read."""
    try:
        with open(cpuinfo) as file:
            for line in file:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def int8_dot_product(cpuinfo="/proc/cpuinfo"):
    """Which of INT8_DOT_PRODUCT the CPU lists in `cpuinfo`; None where it cannot be read."""
    flags = _cpu_flags(cpuinfo)
    return None if flags is None else [name for name in INT8_DOT_PRODUCT if name in flags]


def instruction_sets(cpuinfo="/proc/cpuinfo"):
    """The INSTRUCTION_SETS the CPU lists in `cpuinfo`, by their usual names; None where it
    cannot be read."""
    flags = _cpu_flags(cpuinfo)
    return (
        None
        if flags is None
        else [name for flag, name in INSTRUCTION_SETS.items() if flag in flags]
    )


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
