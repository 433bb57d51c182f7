"""Work done in a fresh process (`se_keras.benchmark.child`): exports, peak-memory
measurements, whole benchmark runs. This module starts the child and reads its answer.

- Exports: the TFLite converter and tf2onnx keep gigabytes that a long benchmark process
  would never give back; in a child process that memory goes when the child does.
- Peak memory: the child imports only what the runtime needs, notes its resident set size
  (the baseline), loads the network (builds the Keras model or the authors' PyTorch model, or
  reads the exported file), runs the batch twice and reports its peak resident set size.
  Peak minus baseline is what the network costs in that runtime: weights, packed or compiled
  copies, activations. A process each, because freed memory stays with the process that had
  it.
- Runs (`run`): `suite.run` for one group of models, so that a long sequence of them (as in
  benchmarks/run.py) never holds more than one group's memory.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile

_KERAS = ("tensorflow", "keras", "se_keras.applications")
# What each runtime imports before the memory baseline is taken.
IMPORTS = {
    "eager": _KERAS,
    "keras": _KERAS,
    "xla": _KERAS,
    "torch": ("torch",),
    "timm": ("torch", "timm"),
    "onnx": ("onnxruntime",),
    "tflite": ("ai_edge_litert.interpreter",),
    "tflite-int8": ("ai_edge_litert.interpreter",),
    "openvino": ("openvino",),
    "openvino-bf16": ("openvino",),
}


def export(runtime, network, path, batch_size, timeout=1800):
    """Export `network` for `runtime` to `path` in a child; returns the file's batch size
    (None: dynamic)."""
    return _run(
        {
            "task": "export",
            "runtime": runtime,
            "network": dataclasses.asdict(network),
            "path": path,
            "batch_size": batch_size,
        },
        timeout,
    )["batch_size"]


def peak_memory(runtime, network, batch_size, threads, path=None, timeout=900):
    """Peak resident memory (bytes) of `network` in `runtime` above the import baseline."""
    report = _run(
        {
            "task": "memory",
            "runtime": runtime,
            "network": dataclasses.asdict(network),
            "batch_size": batch_size,
            "threads": threads,
            "path": path,
        },
        timeout,
    )
    return report["peak"] - report["baseline"]


def run(settings, start=None, timeout=None):
    """`suite.run(settings)` in a child process; its progress goes to this stderr."""
    with tempfile.TemporaryDirectory(prefix="se-bench-") as folder:
        path = os.path.join(folder, "results.json")
        _run(
            {"task": "run", "settings": dataclasses.asdict(settings), "path": path, "start": start},
            timeout,
            capture_stderr=False,
        )
        with open(path) as file:
            return json.load(file)


# The child's work is `se_keras.benchmark.child`; TensorFlow's C++ logging is off before
# anything imports it.
_CHILD = (
    "import json, os, sys; os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3'); "
    "from se_keras.benchmark import child; child.main(json.loads(sys.argv[1]))"
)


def _run(request, timeout, capture_stderr=True):
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(request)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if capture_stderr else None,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        # The last line that is not TensorFlow's logging: the exception, usually.
        messages = [
            line
            for line in (result.stderr or "").strip().splitlines()
            if line.strip() and not re.match(r"[IWEF]\d{4} |WARNING: All log", line)
        ]
        reason = messages[-1] if messages else f"exit status {result.returncode}"
        if result.returncode < 0:
            reason = f"killed by signal {-result.returncode} (out of memory?)"
        raise RuntimeError(f"{request['task']} in a child process failed: {reason}")
    return json.loads(lines[-1])
