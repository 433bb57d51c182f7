"""SavedModel with a `serving_default` signature taking a float32 `images` batch (TF Serving,
`tf.saved_model.load`)."""

import numpy as np

from se_keras.export._common import input_spec

SIGNATURE = "serving_default"
_PLUMBING = {"Placeholder", "NoOp", "Identity", "Const", "ReadVariableOp"}


def write(model, path, batch_size=None):
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SIGNATURE,
        lambda images: model(images, training=False),
        input_signature=[input_spec(model, batch_size)],
    )
    archive.write_out(path, verbose=False)
    return path


def load(path):
    import tensorflow as tf

    return tf.saved_model.load(path).signatures[SIGNATURE]


def predict(signature, images):
    (output,) = signature(images=np.asarray(images, dtype=np.float32)).values()
    return output.numpy()


def operators(path):
    """TensorFlow operation types of the serving graph (functions inlined by name)."""
    signature = load(path)
    graph = signature.graph.as_graph_def()
    bodies = [graph.node] + [function.node_def for function in graph.library.function]
    return [node.op for nodes in bodies for node in nodes if node.op not in _PLUMBING]
