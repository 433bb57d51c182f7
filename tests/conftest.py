"""Shared fixtures: the authors' PyTorch reference (pretrainedmodels/models/senet.py)."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# tensorflow-datasets' default folder (the bundled digits, prepared on first use) is one per
# test process: two pytest-xdist workers preparing one folder at once would race, and the
# tests leave a user's own datasets alone. Read by tensorflow-datasets when it is imported.
os.environ["TFDS_DATA_DIR"] = tempfile.mkdtemp(prefix="se-keras-tests-tfds-")
atexit.register(shutil.rmtree, os.environ["TFDS_DATA_DIR"], True)

import pytest  # noqa: E402

from se_keras.convert import reference  # noqa: E402

# Trainable parameter counts of the reference models (torch `parameters()`), DESIGN.md.
REFERENCE_PARAMS = {
    "se_resnet50": 28_088_024,
    "se_resnet101": 49_326_872,
    "se_resnet152": 66_821_848,
    "se_resnext50_32x4d": 27_559_896,
    "se_resnext101_32x4d": 48_955_416,
    "senet154": 115_088_984,
}
# Our registry name for each reference builder.
OURS = {ref: ours for ours, ref in reference.REFERENCE_BUILDERS.items()}


@pytest.fixture(scope="session")
def senet():
    module = reference.load_senet_module()
    if module is None:
        raise RuntimeError(
            "The reference needs torch and `pip install --no-deps pretrainedmodels`."
        )
    return module


randomize = reference.randomize
reference_outputs = reference.run
