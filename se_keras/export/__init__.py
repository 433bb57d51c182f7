"""Export to SavedModel, TFLite, ONNX and OpenVINO IR, each artifact run in its own runtime and
compared with the Keras model before it is moved into place (TensorFlow backend only).

    report = se_keras.export.export_model(model, "model.onnx", "onnx")
    print(report)  # path, size, operators, max |difference| against Keras
"""

import collections
import dataclasses
import os

import numpy as np

from se_keras.export import onnx, openvino, saved_model, tflite
from se_keras.export._common import in_batches, input_shape, input_spec  # noqa: F401
from se_keras.utils import files
from se_keras.utils.validation import check_choice

FORMATS = ("saved_model", "tflite", "onnx", "openvino")
QUANTIZATIONS = (None, "float16", "dynamic", "int8")
QUANTIZED = {"tflite": QUANTIZATIONS, "onnx": (None, "int8")}  # what each format can be
PRECISIONS = openvino.PRECISIONS  # OpenVINO only: the precision the CPU computes in
DEFAULT_OPSET = 17
# Largest accepted max |difference| against Keras, as a fraction of the output scale
# (max |output|, at least 1). Float artifacts compute the same function in another runtime;
# the quantized ones were measured on trained and random models (docs/export.md):
# float16 and dynamic-range stay within 2e-3 and 1e-2 of the scale, int8 within 0.2,
# OpenVINO in bfloat16 within 4.4e-3 at full size and 7.1e-3 at the tests' small sizes.
TOLERANCES = {None: 1e-4, "float16": 1e-2, "dynamic": 5e-2, "int8": 0.35, "bf16": 3e-2}
VERIFICATION_BATCH = 4


class ExportError(ValueError):
    """The artifact was written but disagrees with the Keras model; nothing was kept."""


@dataclasses.dataclass
class ExportReport:
    path: str
    format: str
    size_bytes: int
    operators: dict  # operator name -> count, most frequent first
    max_difference: float  # max |artifact - Keras| on the verification batch (nan: not run)
    tolerance: float
    output_scale: float
    top1_agreement: float  # fraction of the verification batch with the same arg-max
    quantize: str = None
    batch_size: int = None  # None: dynamic
    precision: str = None  # OpenVINO: the precision it was verified (and will run) at

    @property
    def variant(self):
        """What was asked beyond the format: the quantization or OpenVINO's precision."""
        return self.quantize or self.precision

    def __str__(self):
        ops = ", ".join(f"{name} x{count}" for name, count in self.operators.items())
        check = (
            "not verified"
            if np.isnan(self.max_difference)
            else f"max |difference| against Keras {self.max_difference:.2e} "
            f"(output scale {self.output_scale:.2e}, tolerance {self.tolerance:.1e} x scale)"
        )
        return (
            f"{self.format}{f' ({self.variant})' if self.variant else ''} {self.path}: "
            f"{self.size_bytes / 2**20:.1f} MiB, batch {self.batch_size or 'dynamic'}, "
            f"{check}; operators: {ops}"
        )


def check_destination(path):
    """Refuse a `path` whose folder does not exist (before anything is built or fetched)."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise ValueError(
            f"No such folder: {folder} (create it first). Received: path={os.fspath(path)!r}"
        )


def export_model(
    model,
    path,
    format,
    quantize=None,
    representative_data=None,
    verify=True,
    batch_size="auto",
    opset=DEFAULT_OPSET,
    overwrite=False,
    verification_data=None,
    precision="f32",
):
    """Write `model` to `path` as `format` and return an `ExportReport`.

    Args:
        model: a Keras model with one image input (TensorFlow backend).
        path: file (`.tflite`, `.onnx`, OpenVINO's `.xml`, whose `.bin` goes beside it) or
            folder (SavedModel) to create. It appears only when the export (and verification)
            succeeded; an existing one is an error unless `overwrite=True`.
        format: `"saved_model"`, `"tflite"`, `"onnx"` or `"openvino"`.
        quantize: TFLite: None (float32), `"float16"`, `"dynamic"` (int8 weights, float
            activations) or `"int8"` (full integer with int8 input and output, calibrated on
            `representative_data`). ONNX: None or `"int8"` (onnxruntime's static
            quantization, calibrated on `representative_data`; float input and output).
        representative_data: images (an array `(N, H, W, C)` or an iterable of such batches),
            preprocessed like the model's input; needed for `"int8"`. Its first examples are
            also the verification batch.
        verify: run the artifact (TensorFlow, the LiteRT interpreter, onnxruntime, OpenVINO's
            CPU runtime) and raise `ExportError` if it differs from Keras by more than the
            tolerance.
        batch_size: the artifact's batch dimension: None (dynamic), an integer, or `"auto"`:
            dynamic, except a fixed batch of 1 for TFLite models with a channel shuffle
            (its reshape with a dynamic batch splits XNNPACK's graph; see `tflite.py`).
        opset: ONNX opset.
        verification_data: the batch to verify on (default: `representative_data`'s first
            examples, else seeded random normal images).
        precision: OpenVINO only: `"f32"` or `"bf16"` (needs a CPU with bfloat16
            instructions), verified at its own tolerance and recorded in the IR for `load`.
    """
    check_choice("format", format, FORMATS)
    check_choice("quantize", quantize, QUANTIZATIONS)
    if quantize not in QUANTIZED.get(format, (None,)):
        raise ValueError(
            "Only TFLite files (float16, dynamic, int8) and ONNX files (int8) are quantized. "
            f"Received: quantize={quantize!r} with format={format!r}"
        )
    check_choice("precision", precision, PRECISIONS)
    if precision != "f32" and format != "openvino":
        raise ValueError(
            f"Only OpenVINO IR runs in bfloat16. Received: precision={precision!r} "
            f"with format={format!r}"
        )
    check_destination(path)
    if format == "openvino":
        openvino.check(path, precision)
    calibration = _as_batches(model, representative_data, "representative_data")
    if quantize == "int8" and calibration is None:
        raise ValueError(
            'quantize="int8" calibrates on `representative_data` (images shaped '
            "like the model's input). Received: representative_data=None"
        )
    batch_size = _batch_size(model, format, batch_size)
    path = os.path.abspath(os.fspath(path))
    companions = COMPANIONS.get(format, ())
    for existing in files.companion_paths(path, companions):
        if os.path.exists(existing) and not overwrite:
            raise FileExistsError(
                f"{existing} exists; pass overwrite=True (CLI: --force) to replace it"
            )
    with files.atomic_path(path, companions) as partial:
        backend = BACKENDS[format]
        if format == "tflite":
            backend.convert(model, partial, quantize, calibration, batch_size)
        elif format == "onnx":
            backend.convert(model, partial, opset, batch_size, quantize, calibration)
        elif format == "openvino":
            backend.convert(model, partial, precision, batch_size)
        else:
            backend.write(model, partial, batch_size)
        report = _report(
            model,
            backend,
            partial,
            format,
            batch_size,
            verify,
            _verification_batch(model, verification_data, calibration),
            quantize=quantize,
            precision=precision if format == "openvino" else None,
        )
        if verify and not report.max_difference <= report.tolerance * report.output_scale:
            raise ExportError(
                f"the {format} artifact differs from the Keras model by "
                f"{report.max_difference:.3e} (output scale {report.output_scale:.3e}, "
                f"tolerance {report.tolerance:.1e} x scale); nothing was written to {path}"
            )
    report.path = path
    return report


BACKENDS = {"saved_model": saved_model, "tflite": tflite, "onnx": onnx, "openvino": openvino}
COMPANIONS = {"openvino": openvino.COMPANION_SUFFIXES}


def _report(model, backend, path, format, batch_size, verify, images, quantize, precision):
    expected = np.asarray(model.predict(images, verbose=0))
    if verify:
        loaded = backend.load(path)
        actual = in_batches(lambda batch: backend.predict(loaded, batch), images, batch_size)
        difference = float(np.abs(actual - expected).max())
        agreement = float(np.mean(actual.argmax(-1) == expected.argmax(-1)))
    else:
        difference = agreement = float("nan")
    return ExportReport(
        path=path,
        format=format,
        size_bytes=sum(_size(p) for p in files.companion_paths(path, COMPANIONS.get(format, ()))),
        operators=dict(collections.Counter(backend.operators(path)).most_common()),
        max_difference=difference,
        tolerance=TOLERANCES[quantize or (precision if precision != "f32" else None)],
        output_scale=max(1.0, float(np.abs(expected).max())),
        top1_agreement=agreement,
        quantize=quantize,
        batch_size=batch_size,
        precision=precision,
    )


def _size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def _batch_size(model, format, batch_size):
    if batch_size == "auto":
        from se_keras.layers import ChannelShuffle

        shuffles = any(isinstance(layer, ChannelShuffle) for layer in model.layers)
        return 1 if format == "tflite" and shuffles else None
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(
            "`batch_size` must be None (dynamic), a positive integer or 'auto'. "
            f"Received: batch_size={batch_size!r}"
        )
    return batch_size


def _as_batches(model, data, name):
    """`data` as a list of float32 arrays shaped like the model's input, or None."""
    if data is None:
        return None
    batches = (
        [np.asarray(data, dtype=np.float32)]
        if hasattr(data, "shape")
        else [
            np.asarray(batch[0] if isinstance(batch, (tuple, list)) else batch, dtype=np.float32)
            for batch in data
        ]
    )
    shape = input_shape(model)
    for batch in batches:
        if batch.ndim != 4 or batch.shape[1:] != shape:
            raise ValueError(
                f"`{name}` must hold images shaped (N, {', '.join(map(str, shape))})."
                f" Received: a batch of shape {batch.shape}"
            )
    return batches


def _verification_batch(model, data, calibration):
    batches = _as_batches(model, data, "verification_data") or calibration
    if batches:
        return np.concatenate(batches)[:VERIFICATION_BATCH]
    rng = np.random.default_rng(0)
    return rng.standard_normal((VERIFICATION_BATCH, *input_shape(model)), dtype=np.float32)


__all__ = ["FORMATS", "QUANTIZATIONS", "ExportError", "ExportReport", "export_model"]
