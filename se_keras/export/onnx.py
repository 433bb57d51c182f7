"""ONNX through tf2onnx, with a dynamic batch axis, plain grouped `Conv` nodes and the SE
scales in the convolutions' NCHW layout; optionally quantized to int8 by onnxruntime."""

import contextlib
import os
import warnings

import numpy as np

from se_keras.export import tracing
from se_keras.export._common import calibration_examples, input_spec
from se_keras.utils import files


def convert(
    model,
    path,
    opset,
    batch_size=None,
    quantize=None,
    calibration=None,
    rewrites=tracing.SE_REWRITES,
):
    """Write `model` as ONNX at `path` and check the file (`onnx.checker`, full check);
    `quantize="int8"`: then quantized statically on the `calibration` batches. `rewrites`:
    the equal rewrites of SE (`tracing`'s) traced besides the two tf2onnx needs."""
    try:
        import onnx
        import tf2onnx
    except ImportError:
        raise ImportError(
            'ONNX export needs tf2onnx and onnx: pip install "se-keras[export]"'
        ) from None
    if not isinstance(opset, int) or not 13 <= opset <= 18:
        raise ValueError(
            f"`opset` must be an integer from 13 to 18 (tf2onnx {tf2onnx.__version__}"
            f"). Received: opset={opset!r}"
        )
    with (
        direct_grouped_convolutions(model),
        nchw_channel_scales(model),
        optimizers_in_place(),
        tracing.applied(rewrites, model),
        warnings.catch_warnings(),
    ):
        # Keras' numpy-2 shim for tf2onnx probes the removed `np.object` (FutureWarning).
        warnings.simplefilter("ignore", FutureWarning)
        model.export(
            path,
            format="onnx",
            input_signature=[input_spec(model, batch_size)],
            opset_version=opset,
            verbose=False,
        )
    onnx.checker.check_model(path, full_check=True)
    wrapped = [op for op in operators(path) if op.endswith("PartitionedCall")]
    if wrapped:
        raise ValueError(f"tf2onnx left TensorFlow function calls in the graph: {wrapped}")
    if quantize == "int8":
        quantize_int8(path, calibration)
    return path


def quantize_int8(path, calibration):
    """The ONNX file at `path`, replaced by its static int8 quantization (onnxruntime, QDQ
    format): int8 weights per output channel, int8 activations whose ranges were calibrated
    on the first images of `calibration`; float32 input and output, so the file takes the
    same images. Only onnxruntime's quantizer is needed, not a TensorFlow converter."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Examples(CalibrationDataReader):
        def __init__(self):
            self.examples = calibration_examples(calibration)

        def get_next(self):
            image = next(self.examples, None)
            return None if image is None else {"images": image}

    with files.staging_folder(os.path.dirname(os.path.abspath(path))) as staging:
        prepared = os.path.join(staging, "prepared.onnx")
        # Shape inference and graph folding first, as onnxruntime recommends.
        quant_pre_process(path, prepared)
        quantize_static(
            prepared,
            path,
            Examples(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
        )


def direct_grouped_convolutions(model):
    """While tracing for tf2onnx: grouped `Conv2D`s call `tf.nn.convolution` directly.

    On the TensorFlow backend Keras runs a grouped convolution inside a nested jit-compiled
    function, which tf2onnx turns into an invalid `StatefulPartitionedCall` node. TensorFlow's
    own convolution accepts the `(kh, kw, C / groups, filters)` kernel and tf2onnx maps it to
    one ONNX `Conv` with `group`. Only the trace is affected: Keras keeps its own path for
    running the model (a direct grouped convolution fails in graph mode without oneDNN).
    """
    import keras
    import tensorflow as tf

    def direct(layer):
        def convolution_op(inputs, kernel):
            return tf.nn.convolution(
                inputs,
                kernel,
                strides=list(layer.strides),
                padding=layer.padding.upper(),
                dilations=list(layer.dilation_rate),
                data_format="NHWC" if layer.data_format == "channels_last" else "NCHW",
            )

        return convolution_op

    grouped = [
        layer
        for layer in tracing.all_layers(model)
        if isinstance(layer, keras.layers.Conv2D) and layer.groups > 1
    ]
    return tracing.shadowed(grouped, "convolution_op", direct)


def nchw_channel_scales(model):
    """While tracing for tf2onnx: channels_last SE layers scale their input in NCHW.

    tf2onnx runs convolutions in NCHW between Transposes, then moves the Transposes through
    the graph until they cancel; it cannot move one across a multiply by a non-constant,
    such as the gate reshaped to (N, 1, 1, C), so every SE block kept its feature map
    transposed to NHWC and back around the scale (26 Transpose nodes in SE-MobileNet, 33 in
    SE-ResNet-50). Written as transpose, multiply by the (N, C, 1, 1) gate, transpose
    back, the traced Transposes cancel with tf2onnx's own. Keras keeps the layer's own call.
    """
    from keras import ops

    from se_keras.layers import SqueezeExcite

    def nchw(layer):
        def call(inputs):
            rank = len(inputs.shape)
            gate = ops.reshape(layer.excitation(inputs), (-1, layer.channels) + (1,) * (rank - 2))
            x = ops.transpose(inputs, (0, rank - 1, *range(1, rank - 1))) * gate
            return ops.transpose(x, (0, *range(2, rank), 1))

        return call

    layers = [
        layer
        for layer in tracing.all_layers(model)
        if isinstance(layer, SqueezeExcite)
        and layer.data_format == "channels_last"
        and layer.pooling is not None
    ]
    return tracing.shadowed(layers, "call", nchw)


@contextlib.contextmanager
def optimizers_in_place():
    """While converting: tf2onnx's graph optimizers work on the graph itself.

    By default tf2onnx deep-copies the whole graph, weights included, before each of its
    optimizers, to fall back on the copy when one fails; the copies took SE-ResNeXt-50's
    conversion (a 110 MB file) from 5.8 to 8.1 GB of memory. In place, an optimizer that
    fails fails the export instead of being skipped.
    """
    name = "TF2ONNX_CATCH_ERRORS"  # tf2onnx.constants.ENV_TF2ONNX_CATCH_ERRORS
    before = os.environ.get(name)
    os.environ[name] = "FALSE"
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


def load(path, num_threads=None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def predict(session, images):
    (name,) = [spec.name for spec in session.get_inputs()]
    return session.run(None, {name: np.asarray(images, dtype=np.float32)})[0]


def operators(path):
    import onnx

    return [node.op_type for node in onnx.load(path).graph.node]
