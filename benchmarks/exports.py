"""Export verification figures for docs/export.md: every format of the models asked for, at
full size, run in its own runtime against Keras; OpenVINO in float32 and bfloat16; and the
quantized and bf16 files of a model trained on the bundled digits, on its 360 held-out images.

    python benchmarks/exports.py [--models se_resnet50 ...] [--output docs/export.md]
    python benchmarks/exports.py --only openvino digits  # print those tables, write nothing

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

SUFFIX = {"saved_model": "", "onnx": ".onnx", "tflite": ".tflite", "openvino": ".xml"}
# The digits model's reduced-precision files: (label, format, export options).
DIGITS_FILES = (
    *((f"TFLite {q or 'float32'}", "tflite", {"quantize": q}) for q in export.QUANTIZATIONS),
    ("ONNX int8 (onnxruntime)", "onnx", {"quantize": "int8"}),
    ("OpenVINO f32", "openvino", {"precision": "f32"}),
    ("OpenVINO bf16", "openvino", {"precision": "bf16"}),
)

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


def openvino_rows(names, folder, count=16):
    """Each model's IR in OpenVINO at f32 and at bf16 against Keras on `count` random images:
    what bf16's tolerance is chosen from."""
    rows = [("model", "f32 max diff / scale", "bf16 max diff / scale", "bf16 top-1", "export s")]
    for name in names:
        model = realistic_model(name, classes=1000)
        x = np.random.default_rng(1).uniform(-1, 1, (count, *model.inputs[0].shape[1:]))
        expected = model.predict(x.astype("float32"), verbose=0)
        scale = max(1.0, float(np.abs(expected).max()))
        path = os.path.join(folder, f"{name}.xml")
        start = time.perf_counter()
        export.export_model(model, path, "openvino", overwrite=True)
        seconds = time.perf_counter() - start
        cells = []
        for precision in export.PRECISIONS:
            compiled = export.openvino.load(path, precision)
            actual = export.openvino.predict(compiled, x)
            cells.append(f"{np.abs(actual - expected).max() / scale:.1e}")
        agreement = np.mean(actual.argmax(-1) == expected.argmax(-1))
        rows.append((name, *cells, f"{agreement:.3f}", f"{seconds:.0f}"))
        print(" | ".join(rows[-1]), flush=True)
    return rows


def quantized_rows(folder):
    model, calibration, x, labels = digits_model()
    expected = model.predict(x, verbose=0)
    rows = [("file", "size", "top-1 agreement", "max abs probability difference", "test accuracy")]
    rows.append(("Keras (float32)", "-", "-", "-", f"{np.mean(expected.argmax(-1) == labels):.4f}"))
    for label, format, options in DIGITS_FILES:
        path = os.path.join(folder, f"digits-{label.split()[1]}{SUFFIX[format]}")
        report = export.export_model(
            model, path, format, representative_data=calibration, overwrite=True, **options
        )
        backend = export.BACKENDS[format]
        actual = backend.predict(backend.load(path), x)
        rows.append(
            (
                label,
                f"{report.size_bytes / 2**20:.2f} MiB",
                f"{np.mean(actual.argmax(-1) == expected.argmax(-1)):.4f}",
                f"{np.abs(actual - expected).max():.1e}",
                f"{np.mean(actual.argmax(-1) == labels):.4f}",
            )
        )
        print(" | ".join(rows[-1]), flush=True)
    return rows


TABLES = {
    "digits": lambda names, folder: quantized_rows(folder),  # its own model, trained here
    "floats": float_rows,
    "openvino": openvino_rows,
    "batches": tflite_batch_rows,
}


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
    parser.add_argument(
        "--only",
        nargs="+",
        choices=TABLES,
        default=None,
        help="measure only these tables and print them (docs/export.md is left alone)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tables = {table: TABLES[table](args.models, folder) for table in args.only or TABLES}
    if args.only:
        print("\n\n".join(markdown(rows) for rows in tables.values()))
        return
    quantized, floats, bf16, batches = (
        tables[t] for t in ("digits", "floats", "openvino", "batches")
    )
    with open(args.output, "w") as file:
        file.write(f"""# Export verification

Regenerate with `python benchmarks/exports.py` ({len(args.models)} models; `pytest -m slow
tests/test_export.py` runs the same checks for every registered model).

## Reduced precision on real held-out images

SE-ResNet-18 trained on the bundled digits (32x32) until its held-out accuracy reaches 0.95,
exported with
`export_model(model, path, format, quantize=... | precision=..., representative_data=...)`
(int8 calibrated on 200 augmented training images) and run in its own runtime (LiteRT,
onnxruntime, OpenVINO at the recorded precision) on the 360 test images. Top-1 agreement is
with the Keras model's predictions; differences are of softmax probabilities.

{markdown(quantized)}

## OpenVINO in float32 and bfloat16, full input size

Each model's IR run by OpenVINO's CPU runtime at `INFERENCE_PRECISION_HINT` f32 and bf16 on
16 random images, differences as a fraction of the logit scale (max |logit|, at least 1);
the exporter accepts 1e-4 of it in f32 and 3e-2 in bf16.

{markdown(bf16)}

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
