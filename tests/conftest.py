"""Shared fixtures: the authors' PyTorch reference (pretrainedmodels/models/senet.py) and
timm 1.0.31 (tests/timm_reference.py)."""

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
from tests.timm_reference import load_timm  # noqa: E402


@pytest.fixture(scope="session")
def senet():
    module = reference.load_senet_module()
    if module is None:
        raise RuntimeError(
            "The reference needs torch and `pip install --no-deps pretrainedmodels`."
        )
    return module


@pytest.fixture(scope="session")
def timm():
    module = load_timm()
    if module is None:
        raise RuntimeError("The reference needs torch and `pip install --no-deps timm==1.0.31`.")
    return module
