"""Keras model -> TFLite flatbuffer (builtin operators only), and running one."""

import os
import tempfile

import numpy as np


def convert(model, path):
    """Write `model` as a float32 TFLite file at `path` (atomically); returns the path.

    Only TFLite builtin operators are allowed, so the file runs on any TFLite runtime
    without the Flex delegate; a model that needs more fails here, not on the phone.
    """
    import tensorflow as tf

    from se_keras.weights.download import atomic_path

    with tempfile.TemporaryDirectory() as saved_model:
        model.export(saved_model, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = converter.convert()
    path = os.path.abspath(path)
    with atomic_path(path) as partial:
        with open(partial, "wb") as file:
            file.write(flatbuffer)
    return path


def interpreter(path, num_threads=None):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ImportError(
            "Running TFLite files needs the LiteRT interpreter: pip install ai-edge-litert"
        ) from None
    runner = Interpreter(model_path=str(path), num_threads=num_threads)
    runner.allocate_tensors()
    return runner


def predict(runner, images):
    """Run a TFLite interpreter over a batch, one example at a time (the file's batch is 1)."""
    inputs, outputs = runner.get_input_details()[0], runner.get_output_details()[0]
    results = []
    for image in np.asarray(images, dtype=np.float32):
        runner.set_tensor(inputs["index"], image[None])
        runner.invoke()
        results.append(runner.get_tensor(outputs["index"])[0])
    return np.stack(results)
