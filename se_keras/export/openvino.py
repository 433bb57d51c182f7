"""OpenVINO IR (an `.xml` graph beside its `.bin` weights) written by Keras' own exporter, and
run by the OpenVINO runtime on the CPU in float32 or bfloat16.

Keras' `model.export(format="openvino")` serves on the TensorFlow backend: it hands a traced
`tf.function` to `openvino.convert_model`, whose TensorFlow frontend reads Keras' grouped
convolutions as one `GroupConvolution` each (the nested jit-compiled call that defeats
tf2onnx is inlined), with a dynamic batch axis. Where SE follows a 1x1 convolution and
BatchNorm (SE-ResNet's bottlenecks), the traced squeeze averages that convolution's input
instead of its output (`tracing.pooled_expand_inputs`: equal, and cheaper in OpenVINO).

The precision the file was verified at is recorded in it (`rt_info`, under
`runtime_options`), but OpenVINO 2026.4 does not apply that entry itself, and on a CPU with
bfloat16 instructions it runs bf16 unless told otherwise: `load` passes the recorded precision
as `INFERENCE_PRECISION_HINT`, and anyone running the file with their own code must do the
same to get float32.
"""

import contextlib
import functools
import os

import numpy as np

from se_keras.export import tracing
from se_keras.export._common import input_spec
from se_keras.utils import files

PRECISIONS = ("f32", "bf16")
COMPANION_SUFFIXES = (".bin",)  # written beside the .xml, moved into place with it
DEVICE = "CPU"
_PRECISION_KEY = ["runtime_options", "INFERENCE_PRECISION_HINT"]
_PLUMBING = {"Parameter", "Result", "Constant"}


def _openvino():
    try:
        import openvino
    except ImportError:
        raise ImportError(
            'OpenVINO export needs the openvino package: pip install "se-keras[export]"'
        ) from None
    return openvino


@functools.cache
def _core():
    return _openvino().Core()


def cpu_capabilities():
    """What OpenVINO's CPU plugin can run on this machine: "FP32", "BF16", "INT8", ..."""
    return tuple(_core().get_property(DEVICE, "OPTIMIZATION_CAPABILITIES"))


def check(path, precision):
    """Refuse, before anything is traced, an IR path not ending in `.xml` or a precision this
    CPU cannot run."""
    if not os.fspath(path).endswith(".xml"):
        raise ValueError(
            "An OpenVINO IR is an .xml file (its weights go beside it in a .bin). "
            f"Received: path={os.fspath(path)!r}"
        )
    check_precision(precision)


def check_precision(precision):
    """Refuse bf16 on a CPU whose OpenVINO plugin cannot run it, saying what runs instead."""
    if precision == "bf16" and "BF16" not in cpu_capabilities():
        raise ValueError(
            "precision='bf16' needs a CPU with bfloat16 instructions (AVX-512 BF16 or AMX); "
            f"OpenVINO can run {', '.join(cpu_capabilities())} on this one, so "
            "precision='f32' is what runs here. Received: precision='bf16'"
        )


def convert(model, path, precision="f32", batch_size=None, rewrites=tracing.SE_REWRITES):
    """Write `model` as an OpenVINO IR at `path` (`.xml`, and its `.bin` beside it), recording
    `precision` as the one to run it at. `rewrites`: the equal rewrites of the trace
    (`tracing`'s context managers, each called with the model) applied while tracing."""
    ov = _openvino()
    check(path, precision)
    # Keras writes its IR without our entry; the final files are saved again with it (same
    # float32 weights: `compress_to_fp16=False`, where OpenVINO's default halves them).
    with files.staging_folder(os.path.dirname(os.path.abspath(path))) as staging:
        traced = os.path.join(staging, "keras.xml")
        with _telemetry_declined(), tracing.applied(rewrites, model):
            model.export(
                traced,
                format="openvino",
                input_signature=[input_spec(model, batch_size)],
                verbose=False,
            )
        graph = _core().read_model(traced)
        graph.set_rt_info(precision, _PRECISION_KEY)
        ov.save_model(graph, path, compress_to_fp16=False)
        del graph  # the staged .bin may be memory-mapped by it
    return path


@contextlib.contextmanager
def _telemetry_declined():
    """OpenVINO's converter sends usage events (to Google Analytics) unless the user opted out
    with `opt_in_out --opt_out`; a library converting a user's model should not, and on an
    offline machine each conversion waited 2-6 s for them. Its telemetry object is a
    singleton that the converter re-initialises only for another application name, so
    consent declined on the converter's own instance holds for the conversion."""
    try:
        from openvino.tools.ovc.telemetry_utils import init_ovc_telemetry

        telemetry = init_ovc_telemetry()
        previous = telemetry.consent
    except (ImportError, AttributeError):  # openvino_telemetry absent: OpenVINO's stub
        telemetry = None
    if telemetry is not None:
        telemetry.consent = False
    try:
        yield
    finally:
        if telemetry is not None:
            telemetry.consent = previous


def recorded_precision(path):
    """The precision `path` was verified at (f32 for an IR that records none)."""
    graph = _core().read_model(os.fspath(path))
    if graph.has_rt_info(_PRECISION_KEY):
        return graph.get_rt_info(_PRECISION_KEY).astype(str)
    return "f32"


def load(path, precision=None, num_threads=None):
    """The IR compiled for the CPU at `precision` (default: the one recorded in it)."""
    precision = precision or recorded_precision(path)
    check_precision(precision)
    config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
    if num_threads:
        config["INFERENCE_NUM_THREADS"] = int(num_threads)
    return _core().compile_model(os.fspath(path), DEVICE, config)


def predict(compiled, images):
    result = compiled(np.asarray(images, dtype=np.float32))
    return np.asarray(result[compiled.output(0)])


def operators(path):
    """OpenVINO operation types of the graph in execution order (no parameters, results or
    constants)."""
    graph = _core().read_model(os.fspath(path))
    return [
        op.get_type_name() for op in graph.get_ordered_ops() if op.get_type_name() not in _PLUMBING
    ]
