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


def _child(request):
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from se_keras.benchmark import networks, runtimes, timing

    runtime = request["runtime"]
    network = networks.Network(**request["network"])
    model = None
    if runtime in ("eager", "keras", "xla"):
        import keras  # noqa: F401
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(request["threads"])
        import se_keras.applications  # noqa: F401
    elif runtime == "torch":
        import torch  # noqa: F401

        from se_keras.convert import reference

        reference.load_senet_module()
    elif runtime == "onnx":
        import onnxruntime  # noqa: F401
    else:
        import ai_edge_litert.interpreter  # noqa: F401
    baseline = timing.current_rss_bytes()
    if runtime in ("eager", "keras", "xla"):
        model = network.build()
    run = runtimes.load(runtime, network, request["batch_size"], request["threads"],
                        model=model, path=request["path"])
    run()
    run()
    print(json.dumps({"baseline": baseline, "peak": timing.peak_rss_bytes()}))


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
