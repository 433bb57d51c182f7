"""The child process of `se_keras.benchmark.isolated`: one export, one peak-memory
measurement or one benchmark run, answered as a JSON line on stdout.

For a memory measurement the child imports what the runtime needs (`isolated.IMPORTS`)
before it notes its baseline resident set size, so that the baseline holds the runtime and
the peak above it is what the network costs.
"""

import importlib
import json
import sys
import time

from se_keras.benchmark import isolated, networks, report, runtimes, suite, timing
from se_keras.export import export_model
from se_keras.utils import timm_import


def _export(request, network):
    quantize = runtimes.EXPORTS[request["runtime"]][1]
    calibration = (
        runtimes.images(network, runtimes.CALIBRATION_IMAGES, seed=1) if quantize else None
    )
    exported = export_model(
        network.build(),
        request["path"],
        runtimes.EXPORTS[request["runtime"]][0],
        quantize=quantize,
        verify=False,
        representative_data=calibration,
        batch_size=request["batch_size"],
        overwrite=True,
    )
    return {"batch_size": exported.batch_size}


def _memory(request, network):
    runtime = request["runtime"]
    for module in isolated.IMPORTS[runtime]:
        # timm through its loader, which stands in for a missing torchvision
        timm_import.load_timm() if module == "timm" else importlib.import_module(module)
    if runtime in ("eager", "keras", "xla"):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(request["threads"])
    baseline = timing.current_rss_bytes()
    model = network.build() if runtime in ("eager", "keras", "xla") else None
    run = runtimes.load(
        runtime,
        network,
        request["batch_size"],
        request["threads"],
        model=model,
        path=request["path"],
    )
    run()
    run()
    return {"baseline": baseline, "peak": timing.peak_rss_bytes()}


def _suite(request):
    start = request["start"] or time.time()

    def log(message):
        print(f"[{(time.time() - start) / 60:4.1f} min] {message}", file=sys.stderr, flush=True)

    results = suite.run(suite.Settings(**request["settings"]), log)
    report.write_json(results, request["path"])
    return {"path": request["path"]}


def main(request):
    """Do `request` (its "task": "export", "memory" or "run") and print its JSON answer."""
    if request["task"] == "run":
        print(json.dumps(_suite(request)))
        return
    network = networks.Network(**request["network"])
    task = _export if request["task"] == "export" else _memory
    print(json.dumps(task(request, network)))
