"""Export verification figures for docs/export.md: every format of the models asked for, at
full size, run in its own runtime against Keras; and the quantized TFLite files of a model
trained on the bundled digits, on its 360 held-out images.

    python benchmarks/exports.py [--models se_resnet50 ...] [--output docs/export.md]

Random weights with random BatchNorm statistics and He-scaled kernels
(`se_keras.benchmark.realistic`), so that the logits are of order one or more, as in the
tests (tests/test_export.py).
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from se_keras import applications, export
from se_keras.benchmark.realistic import digits_model, realistic_model

SUFFIX = {"saved_model": "", "onnx": ".onnx", "tflite": ".tflite"}

DEFAULT_MODELS = (
    "se_resnet50",
    "se_resnext50",
    "se_inception_v3",
    "se_mobilenet",
    "se_mobilenet_v2",
    "se_shufflenet",
    "se_shufflenet_v2",
)


def float_rows(names, folder):
    rows = [("model", "format", "size", "max abs difference", "logit scale", "export s")]
    for name in names:
        model = realistic_model(name, classes=1000)
        for format in export.FORMATS:
            path = os.path.join(folder, f"{name}-{format}{SUFFIX[format]}")
            start = time.perf_counter()
            report = export.export_model(model, path, format, overwrite=True)
            seconds = time.perf_counter() - start
            # The exporter ran the file in its own runtime on a random batch (the tests do the
            # same with the runtimes' own APIs).
            rows.append(
                (
                    name,
                    format,
                    f"{report.size_bytes / 2**20:.1f} MiB",
                    f"{report.max_difference:.1e}",
                    f"{report.output_scale:.2g}",
                    f"{seconds:.0f}",
                )
            )
            print(" | ".join(rows[-1]), flush=True)
    return rows


def tflite_batch_rows(names, folder, repeats=25):
    """Batch-1 latency of a fixed-batch and a dynamic-batch TFLite file (XNNPACK, 2 threads),
    interleaved, medians: what `batch_size="auto"` is chosen from."""
    rows = [("model", "fixed batch 1 (ms)", "dynamic batch (ms)", "RESHAPE ops fixed / dynamic")]
    for name in names:
        model = realistic_model(name, classes=1000)
        shape = (1, *model.inputs[0].shape[1:])
        x = np.random.default_rng(1).uniform(-1, 1, shape).astype("float32")
        runners, reshapes = {}, []
        for batch in (1, None):
            path = os.path.join(folder, f"{name}-batch{batch}.tflite")
            report = export.export_model(model, path, "tflite", batch_size=batch, overwrite=True)
            runners[batch] = export.tflite.interpreter(path, num_threads=2)
            reshapes.append(str(report.operators.get("RESHAPE", 0)))
        times = {batch: [] for batch in runners}
        for _ in range(repeats):
            for batch, runner in runners.items():
                start = time.perf_counter()
                export.tflite.predict(runner, x)
                times[batch].append(time.perf_counter() - start)
        rows.append(
            (name, *(f"{np.median(times[b]) * 1e3:.1f}" for b in (1, None)), " / ".join(reshapes))
        )
        print(" | ".join(rows[-1]), flush=True)
    return rows


def quantized_rows(folder):
    model, calibration, x, labels = digits_model()
    expected = model.predict(x, verbose=0)
    rows = [
        ("TFLite", "size", "top-1 agreement", "max abs probability difference", "test accuracy")
    ]
    rows.append(("Keras (float32)", "-", "-", "-", f"{np.mean(expected.argmax(-1) == labels):.4f}"))
    for quantize in export.QUANTIZATIONS:
        path = os.path.join(folder, f"digits-{quantize}.tflite")
        report = export.export_model(
            model,
            path,
            "tflite",
            quantize=quantize,
            representative_data=calibration,
            overwrite=True,
        )
        actual = export.tflite.predict(export.tflite.interpreter(path), x)
        rows.append(
            (
                quantize or "float32",
                f"{report.size_bytes / 2**20:.2f} MiB",
                f"{np.mean(actual.argmax(-1) == expected.argmax(-1)):.4f}",
                f"{np.abs(actual - expected).max():.1e}",
                f"{np.mean(actual.argmax(-1) == labels):.4f}",
            )
        )
        print(" | ".join(rows[-1]), flush=True)
    return rows


def markdown(rows):
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows[1:]])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=DEFAULT_MODELS,
        choices=applications.list_models(),
        metavar="MODEL",
    )
    parser.add_argument("--output", default="docs/export.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        quantized = quantized_rows(folder)
        floats = float_rows(args.models, folder)
        batches = tflite_batch_rows(args.models, folder)
    with open(args.output, "w") as file:
        file.write(f"""# Export verification

Regenerate with `python benchmarks/exports.py` ({len(args.models)} models; `pytest -m slow
tests/test_export.py` runs the same checks for every registered model).

## Quantized TFLite on real held-out images

SE-ResNet-18 trained for 5 epochs on the bundled digits (32x32), exported with
`export_model(model, path, "tflite", quantize=..., representative_data=...)` (int8 calibrated
on 200 augmented training images) and run by the LiteRT interpreter on the 360 test images.
Top-1 agreement is with the Keras model's predictions; differences are of softmax
probabilities.

{markdown(quantized)}

## Float artifacts against Keras, full input size

Random weights with random BatchNorm statistics, 3 random images; each artifact loaded with
its own runtime (`tf.saved_model.load`, the LiteRT interpreter, onnxruntime). The tests
require a max |difference| of at most 1e-4 of the logit scale.

{markdown(floats)}

## TFLite: fixed or dynamic batch

A dynamic batch costs one RESHAPE per SE block (the gate is broadcast over a batch the
converter cannot fold) and, in ShuffleNet, reshapes in every channel shuffle. Batch-1 latency
of both files, {len(args.models)} models, interleaved runs, medians (2 threads, the machine
shared with other jobs, so differences of a few percent are noise):

{markdown(batches)}

`export_model(..., batch_size="auto")` (the default) gives TFLite files of ShuffleNet models a
fixed batch of 1 and every other file a dynamic batch; `batch_size=1` or `--batch-size 1` fixes
it for any model.
""")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
