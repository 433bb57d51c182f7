"""Files from the previous release keep working: every layer name and weight shape is what
0.1.0 built, and a `.keras` file it saved loads with `import se_keras` alone and computes
the same outputs.

The fixtures were written by the 0.1.0 code (commit 35445ee): `layers_0.1.0.json` holds,
per model, each layer's name and weight shapes at a small input with 10 classes;
`tiny_0.1.0.keras` is a small model with every se-keras layer, compiled with the training
schedule, and `tiny_0.1.0.npz` its input and outputs.
"""

import json
import os
import subprocess
import sys

import keras
import pytest

from se_keras import applications

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
with open(os.path.join(FIXTURES, "layers_0.1.0.json")) as _file:
    RELEASED = json.load(_file)
SIZES = {"se_inception_v3": 75, "se_inception_resnet_v2": 75}  # as when they were written


def test_every_released_model_is_still_registered():
    assert set(RELEASED) <= set(applications.list_models())


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_layer_names_and_weight_shapes_are_unchanged(name):
    side = SIZES.get(name, 32)
    model = applications.get_model(name, weights=None, input_shape=(side, side, 3), classes=10)
    layers = [[layer.name, [list(w.shape) for w in layer.weights]] for layer in model.layers]
    # The input layer's name is Keras' automatic one (`input_layer`, `input_layer_3`, ...,
    # depending on what the process built before): the builders never named it.
    assert layers[0][0].startswith("input_layer") and RELEASED[name][0][0] == "input_layer"
    assert layers[1:] == RELEASED[name][1:]
    keras.backend.clear_session()


def test_a_released_keras_file_loads_in_a_fresh_process_and_computes_the_same():
    code = (
        "import sys, numpy as np, keras, se_keras\n"
        "model = keras.saving.load_model(sys.argv[1])\n"
        "data = np.load(sys.argv[2])\n"
        "difference = np.abs(model.predict(data['images'], verbose=0) - data['outputs']).max()\n"
        "print(model.optimizer.get_config()['learning_rate']['class_name'], difference)\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            os.path.join(FIXTURES, "tiny_0.1.0.keras"),
            os.path.join(FIXTURES, "tiny_0.1.0.npz"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    schedule, difference = result.stdout.split()
    assert schedule == "WarmupSchedule" and float(difference) <= 1e-6
