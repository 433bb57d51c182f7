"""Keras model -> TFLite flatbuffer (builtin operators only, optionally quantized), and running
one with the LiteRT interpreter (XNNPACK by default)."""

import os
import warnings

import numpy as np

from se_keras.export import saved_model
from se_keras.export._common import calibration_examples, in_batches
from se_keras.utils import files, native_stderr


def convert(model, path, quantize=None, representative_data=None, batch_size=1):
    """Write `model` as a TFLite file at `path`; returns the path.

    Only TFLite builtin operators are allowed, so the file runs on any TFLite runtime
    without the Flex delegate; a model that needs more fails here, not on the phone.
    `batch_size=None` gives a dynamic batch; a fixed one lets the converter fold the batch
    into reshapes (ShuffleNet's channel shuffle with a dynamic batch was measured to split
    XNNPACK's graph into 33 partitions: 3.6 ms against 2.2 ms at batch 1).
    """
    import tensorflow as tf

    # The intermediate SavedModel lives in a staging folder that a killed run's successor
    # removes (a TemporaryDirectory would stay behind after kill -9).
    with files.staging_folder() as folder:
        saved_model.write(model, folder, batch_size)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
            converter.representative_dataset = _examples(representative_data)
        flatbuffer = converter.convert()
    path = os.path.abspath(path)
    with files.atomic_path(path) as partial:
        with open(partial, "wb") as file:
            file.write(flatbuffer)
    return path


def _examples(batches):
    def generate():
        for image in calibration_examples(batches):
            yield [image]

    return generate


def interpreter(path, num_threads=None):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ImportError(
            "Running TFLite files needs the LiteRT interpreter: pip install ai-edge-litert"
        ) from None
    try:
        # LiteRT writes "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to the
        # native stderr, which no setting of its silences (replayed if this fails).
        with native_stderr.captured():
            runner = Interpreter(model_path=str(path), num_threads=num_threads)
            runner.allocate_tensors()
    except RuntimeError as error:
        # XNNPACK refuses some int8 graphs whose quantization scales fall outside the ranges
        # its kernels support (seen once in four calibrations of the same trained model);
        # TFLite's own kernels run them.
        if "XNNPACK" not in str(error):
            raise
        warnings.warn(
            f"{path}: XNNPACK could not prepare the graph ({error}); running it "
            "with TFLite's builtin kernels",
            stacklevel=2,
        )
        runner = Interpreter(
            model_path=str(path),
            num_threads=num_threads,
            experimental_op_resolver_type=_no_delegate(),
        )
        runner.allocate_tensors()
    return runner


def _no_delegate():
    from ai_edge_litert.interpreter import OpResolverType

    return OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES


load = interpreter


def predict(runner, images):
    """Run a TFLite interpreter over a float batch; quantized (int8) inputs and outputs are
    converted with the file's scale and zero point."""
    inputs, outputs = runner.get_input_details()[0], runner.get_output_details()[0]
    fixed = int(inputs["shape_signature"][0])

    def run(batch):
        if fixed == -1 and runner.get_input_details()[0]["shape"][0] != len(batch):
            runner.resize_tensor_input(inputs["index"], batch.shape)
            runner.allocate_tensors()
        runner.set_tensor(inputs["index"], _quantize(batch, inputs))
        runner.invoke()
        return _dequantize(runner.get_tensor(outputs["index"]), outputs)

    return in_batches(run, images, None if fixed == -1 else fixed)


def _quantize(values, details):
    scale, zero_point = details["quantization"]
    if not scale:
        return values.astype(details["dtype"])
    info = np.iinfo(details["dtype"])
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(
        details["dtype"]
    )


def _dequantize(values, details):
    scale, zero_point = details["quantization"]
    return (
        values.astype(np.float32) if not scale else (values.astype(np.float32) - zero_point) * scale
    )


def operators(path):
    """Operator names in execution order, as TFLite's own kernels see them (no delegate)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path), experimental_op_resolver_type=_no_delegate())
    return [op["op_name"] for op in runner._get_ops_details()]
