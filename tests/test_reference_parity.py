"""Our networks against the authors' PyTorch port: the same checkpoint gives the same logits.

The reference gets random weights and random BatchNorm statistics, its state dict goes through
the public `weights=` path, and both run the same random batch in inference mode.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import se_keras
from tests.helpers import (
    OURS,
    REFERENCE_PARAMS,
    basic_block_reference,
    randomize,
    reference_outputs,
)

TOLERANCE = 1e-4  # of the logits' scale


def _compare(ours, ref, path, images, include_top=True):
    model = se_keras.applications.get_model(
        ours,
        weights=str(path),
        include_top=include_top,
        classifier_activation=None,
        input_shape=None if include_top else images.shape[1:],
    )
    expected = reference_outputs(ref, images, features_only=not include_top)
    got = model.predict(images, verbose=0)
    assert got.shape == expected.shape
    scale = np.abs(expected).max()
    assert scale > 1e-3  # the comparison is not between two near-zero tensors
    assert np.abs(got - expected).max() <= TOLERANCE * scale
    return model


def _save(torch_model, tmp_path):
    import torch

    path = tmp_path / "reference.pth"
    torch.save(torch_model.state_dict(), path)
    return path


def _parity(senet, ref_name, tmp_path, non_square=False):
    ref = randomize(getattr(senet, ref_name)(pretrained=None), seed=len(ref_name))
    path = _save(ref, tmp_path)
    images = np.random.default_rng(0).standard_normal((2, 224, 224, 3), dtype=np.float32)
    model = _compare(OURS[ref_name], ref, path, images)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == REFERENCE_PARAMS[ref_name]
    assert trainable == sum(p.numel() for p in ref.parameters())
    if non_square:  # odd and even sizes exercise the ceil-mode pool and symmetric padding
        images = np.random.default_rng(1).standard_normal((1, 193, 258, 3), dtype=np.float32)
        _compare(OURS[ref_name], ref, path, images, include_top=False)


@pytest.mark.parametrize("ref_name", ["se_resnet50", "se_resnext50_32x4d"])
def test_parity_default_tier(senet, ref_name, tmp_path):
    _parity(senet, ref_name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("ref_name", sorted(REFERENCE_PARAMS))
def test_parity_all_reference_models(senet, ref_name, tmp_path):
    _parity(senet, ref_name, tmp_path, non_square=True)


@pytest.mark.parametrize(
    "ours, layers",
    [
        ("se_resnet18", [2, 2, 2, 2]),
        pytest.param("se_resnet34", [3, 4, 6, 3], marks=pytest.mark.slow),
    ],
)
def test_parity_basic_block(senet, ours, layers, tmp_path):
    ref = randomize(basic_block_reference(senet)(layers))
    path = _save(ref, tmp_path)
    images = np.random.default_rng(2).standard_normal((2, 224, 224, 3), dtype=np.float32)
    model = _compare(ours, ref, path, images)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == sum(
        p.numel() for p in ref.parameters()
    )


def test_safetensors_checkpoint(senet, tmp_path):
    from safetensors.torch import save_file

    ref = randomize(basic_block_reference(senet)([2, 2, 2, 2]), seed=3)
    path = tmp_path / "reference.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    images = np.random.default_rng(3).standard_normal((1, 224, 224, 3), dtype=np.float32)
    _compare("se_resnet18", ref, path, images)


# channels_first on the JAX backend: TensorFlow's CPU kernels run NCHW convolutions only where
# oneDNN is on, which TensorFlow enables just for CPUs with AVX-512 (not on every CI machine).
CHANNELS_FIRST = """
import sys
import keras
import numpy as np
import se_keras

keras.config.set_image_data_format("channels_first")
model = se_keras.applications.SEResNeXt50(weights=sys.argv[1], classifier_activation=None)
assert model.input.shape == (None, 3, 224, 224), model.input.shape
np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
"""


def test_channels_first(senet, tmp_path):
    ref = randomize(senet.se_resnext50_32x4d(pretrained=None), seed=4)
    path = _save(ref, tmp_path)
    images = np.random.default_rng(4).standard_normal((1, 224, 224, 3), dtype=np.float32)
    np.save(tmp_path / "images.npy", images.transpose(0, 3, 1, 2))
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    subprocess.run(
        [
            sys.executable,
            "-c",
            CHANNELS_FIRST,
            str(path),
            str(tmp_path / "images.npy"),
            str(tmp_path / "got.npy"),
        ],
        env=env,
        check=True,
        timeout=900,
    )
    got = np.load(tmp_path / "got.npy")
    expected = reference_outputs(ref, images)
    assert np.abs(got - expected).max() <= TOLERANCE * np.abs(expected).max()
