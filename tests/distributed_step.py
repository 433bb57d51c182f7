"""One training step of the `se-keras train` model under a distribution strategy, through
`se_keras.training.loop.fit` (the custom loop under multiworker); prints the step's loss as
JSON. Run as a subprocess by tests/test_distribution.py (device set-up must happen before
TensorFlow or JAX start).

    python tests/distributed_step.py none|mirrored|multiworker|data_parallel
"""

import json
import sys

import numpy as np

mode = sys.argv[1]
import tensorflow as tf  # noqa: E402

if mode == "mirrored":  # two logical CPU devices stand for two GPUs
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from se_keras.training import loop  # noqa: E402
from se_keras.training.config import TrainConfig  # noqa: E402
from se_keras.training.run import build_model, distribution_scope  # noqa: E402

scope = distribution_scope(mode)  # before any TensorFlow operation (multi-worker needs it)
rng = np.random.default_rng(0)
images = rng.standard_normal((8, 32, 32, 3)).astype("float32")
labels = np.eye(10, dtype="float32")[rng.integers(0, 10, 8)]
if mode != "none":
    # Every replica gets the same 8 examples (BatchNorm statistics are per replica), so the
    # step must give the single-device loss on those 8.
    images, labels = np.concatenate([images, images]), np.concatenate([labels, labels])
dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(len(images))

keras.utils.set_random_seed(0)
config = TrainConfig(model="se_resnet18", strategy=mode, batch_size=len(images))
with scope:
    model = build_model(config, num_classes=10, size=32, steps_per_epoch=1)
history = loop.fit(model, dataset, epochs=1, verbose=0)
print(json.dumps({"loss": float(history.history["loss"][0]), "backend": keras.backend.backend()}))
