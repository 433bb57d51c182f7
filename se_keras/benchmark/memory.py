"""Peak memory of one network in one runtime, measured in a fresh process.

The child imports only what the runtime needs, notes its resident set size (the baseline),
loads the network (builds the Keras model, the authors' PyTorch model, or reads the exported
file), runs the batch twice and reports its peak resident set size. Peak minus baseline is
what the network costs in that runtime: weights, packed or compiled copies, activations.
A separate process per measurement, because freed memory stays with the process that had it.
"""

import dataclasses
import json
import subprocess
import sys


def measure(runtime, network, batch_size, threads, path=None, timeout=900):
    """Peak resident memory (bytes) above the runtime's import baseline."""
    request = {"runtime": runtime, "network": dataclasses.asdict(network),
               "batch_size": batch_size, "threads": threads, "path": path}
    result = subprocess.run(
        [sys.executable, "-m", "se_keras.benchmark.memory", json.dumps(request)],
        capture_output=True, text=True, timeout=timeout,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"memory measurement failed: {tail}")
    report = json.loads(lines[-1])
    return report["peak"] - report["baseline"]


_KERAS = ("tensorflow", "keras", "se_keras.applications")
# What each runtime imports before its baseline is taken.
IMPORTS = {"eager": _KERAS, "keras": _KERAS, "xla": _KERAS, "torch": ("torch",),
           "onnx": ("onnxruntime",), "tflite": ("ai_edge_litert.interpreter",),
           "tflite-int8": ("ai_edge_litert.interpreter",)}


def _child(request):
    import importlib
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from se_keras.benchmark import networks, runtimes, timing

    runtime = request["runtime"]
    network = networks.Network(**request["network"])
    for module in IMPORTS[runtime]:
        importlib.import_module(module)
    if runtime in ("eager", "keras", "xla"):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(request["threads"])
    baseline = timing.current_rss_bytes()
    model = network.build() if runtime in ("eager", "keras", "xla") else None
    run = runtimes.load(runtime, network, request["batch_size"], request["threads"],
                        model=model, path=request["path"])
    run()
    run()
    print(json.dumps({"baseline": baseline, "peak": timing.peak_rss_bytes()}))


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
