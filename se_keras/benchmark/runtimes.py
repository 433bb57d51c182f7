"""The runtimes a network is timed in. Each gives a callable that runs one prepared batch.

Keras, XLA and the exports need the TensorFlow backend; `torch` is the authors' PyTorch
network (Cadene's `senet.py`), available for the six released architectures; `timm` is
timm's PyTorch network of the same layout (`networks.TIMM_COUNTERPARTS`), the SE network
people run in PyTorch today. Every runner returns the batch's outputs as one float32 array.
"""

import glob
import hashlib
import os
import sys

import numpy as np

from se_keras.benchmark import isolated
from se_keras.export import COMPANIONS
from se_keras.utils import files
from se_keras.utils.validation import check_choice

RUNTIMES = {
    "eager": "Keras, eager (op by op)",
    "keras": "Keras in a tf.function graph (no XLA)",
    "xla": "Keras in a tf.function compiled with XLA (jit_compile=True)",
    "tflite": "TFLite float32, LiteRT interpreter with XNNPACK",
    "tflite-int8": "TFLite full integer (int8 in and out), LiteRT with XNNPACK",
    "onnx": "ONNX (tf2onnx), onnxruntime CPUExecutionProvider",
    "openvino": "OpenVINO IR, CPU runtime in float32 (INFERENCE_PRECISION_HINT f32)",
    "openvino-bf16": "the same OpenVINO IR in bfloat16 (CPUs with AVX-512 BF16 or AMX)",
    "torch": "the authors' PyTorch network, channels_last, torch.inference_mode",
    "timm": "timm's PyTorch network of the same layout (for the paper's models timm's "
    "ResNet-B version, e.g. seresnet50), channels_last, torch.inference_mode",
}
# Runtimes that run other code than ours (other weights, for the paper's models another
# layout): timed for comparison, never ranked or compared with our outputs.
OTHERS = ("torch", "timm")
UNAVAILABLE = {  # where each of OTHERS exists
    "torch": "the authors' PyTorch network exists for the six released architectures",
    "timm": "timm has the SE-ResNet / SE-ResNeXt / SENet-154 layouts",
}
DEFAULT_RUNTIMES = ("keras", "xla", "tflite", "onnx", "openvino", "openvino-bf16")
# The exported file behind a runtime: (format, quantize). Both OpenVINO runtimes run the
# same float32 IR; the precision is chosen when it is compiled.
EXPORTS = {
    "tflite": ("tflite", None),
    "tflite-int8": ("tflite", "int8"),
    "onnx": ("onnx", None),
    "openvino": ("openvino", None),
    "openvino-bf16": ("openvino", None),
}
PRECISION = {"openvino": "f32", "openvino-bf16": "bf16"}
SUFFIX = {"tflite": ".tflite", "onnx": ".onnx", "openvino": ".xml"}
CALIBRATION_IMAGES = 8  # int8 calibration; timing does not depend on how well it is calibrated


def parse_runtimes(text):
    """`"keras,xla"` -> `("keras", "xla")`, each checked."""
    names = tuple(name.strip() for name in str(text).split(",") if name.strip())
    if not names:
        raise ValueError(
            f"--runtime needs at least one of {', '.join(RUNTIMES)}. Received: --runtime {text!r}"
        )
    for name in names:
        if name not in RUNTIMES:
            raise ValueError(
                f"Unknown runtime {name!r}; expected a comma-separated list of "
                f"{', '.join(RUNTIMES)}. Received: --runtime {text}"
            )
    return names


def applies(runtime, network):
    """Whether `runtime` can run `network` (the authors' PyTorch model and timm's exist only
    for some)."""
    if runtime == "torch":
        return network.has_reference
    return runtime != "timm" or network.timm_arch is not None


def configure_threads(threads):
    """Ask every runtime for `threads` intra-op threads. Returns `(TensorFlow's intra-op
    threads or None for its default, all cores; PyTorch's OpenMP wait policy)`.

    PyTorch's OpenMP threads spin while they wait for each other (active wait), which on a
    shared machine, where the partner thread is often descheduled, was measured to make the
    authors' SE-ResNet-50 three times slower (4.3 s against 1.5 s per batch of 8, 2 cores
    under load). The benchmark gives PyTorch `OMP_WAIT_POLICY=PASSIVE` unless the
    environment says otherwise; it must be set before torch is first imported.
    """
    import tensorflow as tf

    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already running: keep its setting
        pass
    if "torch" in sys.modules or _has_torch():
        import torch

        torch.set_num_threads(threads)
    wait_policy = os.environ.get("OMP_WAIT_POLICY", "default (active)")
    return tf.config.threading.get_intra_op_parallelism_threads() or None, wait_policy


def _has_torch():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def images(network, batch_size, seed=0):
    """The batch every runtime runs: seeded standard-normal float32 NHWC images."""
    rng = np.random.default_rng(seed)
    size = network.image_size
    return rng.standard_normal((batch_size, size, size, 3), dtype=np.float32)


def load(runtime, network, batch_size, threads, model=None, path=None):
    """A callable running one batch of `network` in `runtime`.

    `model` is the Keras model (eager, keras, xla); `path` the exported file (tflite,
    tflite-int8, onnx, openvino, openvino-bf16). Preparation (compilation, allocation)
    happens on the first call, which the timing harness leaves out as warm-up.
    """
    check_choice("runtime", runtime, tuple(RUNTIMES))
    x = images(network, batch_size)
    if runtime in ("eager", "keras", "xla"):
        return _keras(model, x, runtime)
    if runtime in OTHERS:
        return _pytorch(_torch_network(runtime, network), x, threads)
    if runtime == "onnx":
        from se_keras.export import onnx

        session = onnx.load(path, num_threads=threads)
        feed = {session.get_inputs()[0].name: x}
        return lambda: session.run(None, feed)[0]
    if runtime in PRECISION:
        return _openvino(path, x, threads, PRECISION[runtime])
    return _tflite(path, x, threads)


def _openvino(path, x, threads, precision):
    from se_keras.export import openvino

    # `load` refuses bf16 on a CPU without it, which the run records for this runtime only.
    request = openvino.load(path, precision, num_threads=threads).create_infer_request()
    return lambda: request.infer({0: x})[0]


def _keras(model, x, runtime):
    import tensorflow as tf

    x = tf.constant(x)
    if runtime == "eager":
        return lambda: model(x, training=False).numpy()
    function = tf.function(lambda t: model(t, training=False), jit_compile=runtime == "xla")
    return lambda: function(x).numpy()


def _tflite(path, x, threads):
    from se_keras.export import tflite

    runner = tflite.interpreter(path, num_threads=threads)
    details = runner.get_input_details()[0]
    if tuple(details["shape"]) != x.shape:
        runner.resize_tensor_input(details["index"], x.shape, strict=True)
        runner.allocate_tensors()
    # int8 files take int8 input: quantized here, once, outside the timed call.
    batch = tflite._quantize(x, details)
    output = runner.get_output_details()[0]
    scale, zero_point = output["quantization"]

    def run():
        runner.set_tensor(details["index"], batch)
        runner.invoke()
        result = runner.get_tensor(output["index"])
        # int8 outputs back to float (a few thousand values: nothing next to the network)
        return (result.astype(np.float32) - zero_point) * scale if scale else result

    return run


def _torch_network(runtime, network):
    """The PyTorch module of `runtime` ("torch": the authors', "timm": timm's) for
    `network`, with seeded random weights, in evaluation mode."""
    import torch

    from se_keras.convert import reference
    from se_keras.utils.timm_import import load_timm

    torch.manual_seed(0)
    if runtime == "timm":
        timm = load_timm()
        if timm is None:
            raise ImportError("timm's networks need torch and timm: pip install timm")
        # The base row: the same network without SE (timm's seresnet50 is its resnet50 + SE).
        without_se = {} if network.role == "se" else {"block_args": {"attn_layer": None}}
        return timm.create_model(network.timm_arch, **without_se).eval()
    senet = reference.load_senet_module()
    if senet is None:
        raise ImportError(
            "The authors' PyTorch network needs torch and `pip install --no-deps pretrainedmodels`"
        )
    return getattr(senet, reference.REFERENCE_BUILDERS[network.model])(pretrained=None).eval()


def _pytorch(net, x, threads):
    import torch

    torch.set_num_threads(threads)
    net = net.to(memory_format=torch.channels_last)
    batch = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).contiguous(
        memory_format=torch.channels_last
    )

    def run():
        with torch.inference_mode():
            return net(batch).numpy()

    return run


class Artifacts:
    """Exported files (`se_keras.export.export_model`), made once per network and format, each
    in a child process (see `isolated`).

    With a `directory` they are kept there, under a key made of the network (name, role,
    input size), the runtime and the sources that shape the file (`_sources`), so a later
    run reuses them until one of those changes; without, they live in a temporary folder.
    (Not the model's configuration: Keras numbers auto-named layers per process.)
    """

    def __init__(self, directory=None, log=None):
        import tempfile

        self._temporary = None if directory else tempfile.TemporaryDirectory(prefix="se-bench-")
        self.directory = directory or self._temporary.name
        os.makedirs(self.directory, exist_ok=True)  # exports refuse a folder that is not there
        self.log = log or (lambda message: None)
        self._sources = {}  # per network, read once: edits during a run do not re-key it

    def get(self, runtime, network, batch_size):
        """Path of `network`'s file for `runtime` that runs `batch_size`, exported now (in a
        child process) if it is not there: one with a dynamic batch where the exporter
        allows (`"auto"`), else one per batch size (TFLite files of channel-shuffle
        networks)."""
        format, quantize = EXPORTS[runtime]
        kind = f"{format}-{quantize}" if quantize else format  # one file per distinct export
        stem = os.path.join(
            self.directory,
            f"{network.label.split()[0]}-{kind}-"
            f"{_digest(self._source_digest(network), network, EXPORTS[runtime])}",
        )
        suffix = SUFFIX[format]
        companions = COMPANIONS.get(format, ())

        def name(batch):
            return f"{stem}-b{batch}{suffix}"

        def export(path, batch):
            self.log(f"exporting {network.label} ({runtime}, batch {batch})")
            return isolated.export(runtime, network, path, batch)

        for batch in ("dynamic", batch_size):
            if os.path.exists(name(batch)):
                return name(batch)
        if not glob.glob(name("*")):  # never exported: ask for a dynamic batch
            auto = export(name("auto"), "auto") or "dynamic"
            for old, new in zip(
                files.companion_paths(name("auto"), companions),
                files.companion_paths(name(auto), companions),
            ):
                os.replace(old, new)
            if auto in ("dynamic", batch_size):
                return name(auto)
        export(name(batch_size), batch_size)
        return name(batch_size)

    def _source_digest(self, network):
        if network not in self._sources:
            self._sources[network] = _sources(network)
        return self._sources[network]

    def cleanup(self):
        if self._temporary is not None:
            self._temporary.cleanup()


def _digest(*parts):
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def _sources(network):
    """Digest of what shapes an exported file besides the network itself: the exporters,
    the benchmark's way of building a network, for our networks the layers, the shared
    builder code and the family's module, and the TensorFlow and Keras versions."""
    import keras
    import tensorflow as tf

    import se_keras
    from se_keras import applications

    root = os.path.dirname(se_keras.__file__)
    sources = sorted(glob.glob(os.path.join(root, "export", "*.py")))
    sources.append(os.path.join(root, "benchmark", "networks.py"))  # how a network is built
    if not network.from_keras:
        sources += sorted(glob.glob(os.path.join(root, "layers", "*.py")))
        sources += [
            os.path.join(root, "applications", "_builder.py"),
            applications.family_module(network.model).__file__,
        ]
    digest = hashlib.sha256(f"{tf.__version__} {keras.__version__}".encode())
    for path in sources:
        with open(path, "rb") as file:
            digest.update(file.read())
    return digest.hexdigest()
