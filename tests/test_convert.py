"""Loading checkpoints through `weights=`: mismatches are named, nothing is half-loaded."""

import numpy as np
import pytest
import torch

import se_keras
from tests.helpers import basic_block_reference, randomize


@pytest.fixture(scope="module")
def state_dict(senet):
    return randomize(basic_block_reference(senet)([2, 2, 2, 2]), seed=5).state_dict()


def _build(path, **kwargs):
    return se_keras.applications.SEResNet18(weights=str(path), **kwargs)


def _edited(state_dict, tmp_path, edit):
    state = dict(state_dict)
    edit(state)
    path = tmp_path / "edited.pth"
    torch.save(state, path)
    return path


def test_missing_tensor_names_tensor_and_layer(state_dict, tmp_path):
    path = _edited(state_dict, tmp_path, lambda s: s.pop("layer2.0.bn1.running_var"))
    with pytest.raises(
        ValueError, match=r"'layer2\.0\.bn1\.running_var' for layer 'conv3_block1_1_bn'"
    ):
        _build(path)


def test_misshapen_tensor_names_tensor_and_layer(state_dict, tmp_path):
    path = _edited(
        state_dict,
        tmp_path,
        lambda s: s.update({"layer1.1.se_module.fc1.weight": torch.zeros(8, 64, 1, 1)}),
    )
    with pytest.raises(
        ValueError,
        match=r"'layer1\.1\.se_module\.fc1\.weight' has shape \(8, 64, 1, 1\).*'conv2_block2_se'",
    ):
        _build(path)


def test_unused_tensor_is_refused(state_dict, tmp_path):
    path = _edited(
        state_dict, tmp_path, lambda s: s.update({"layer5.0.conv1.weight": torch.zeros(1)})
    )
    with pytest.raises(ValueError, match=r"'layer5\.0\.conv1\.weight' matches no layer"):
        _build(path)


def test_checkpoint_of_another_architecture(senet, tmp_path):
    path = tmp_path / "se_resnet50.pth"
    torch.save(senet.se_resnet50(pretrained=None).state_dict(), path)
    with pytest.raises(ValueError, match="has shape"):
        _build(path)


class Payload:
    """Stands for arbitrary code in a pickle: unpickling would construct it."""


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"payload": Payload()}, path)
    with pytest.raises(ValueError, match="Could not read the PyTorch checkpoint"):
        _build(path)


def test_headless_model_loads_a_full_checkpoint(senet, state_dict, tmp_path):
    path = tmp_path / "full.pth"
    torch.save(state_dict, path)
    model = _build(path, include_top=False, input_shape=(64, 96, 3))
    ref = basic_block_reference(senet)([2, 2, 2, 2]).eval()
    ref.load_state_dict(state_dict)
    images = np.random.default_rng(0).standard_normal((1, 64, 96, 3)).astype("float32")
    with torch.no_grad():
        expected = ref.features(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
    got = model.predict(images, verbose=0).transpose(0, 3, 1, 2)
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


def test_training_checkpoint_wrapping_is_unwrapped(state_dict, tmp_path):
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state_dict.items()}, "epoch": 3}, path)
    model = _build(path)
    np.testing.assert_allclose(
        model.get_layer("predictions").kernel.numpy(), state_dict["last_linear.weight"].numpy().T
    )


def test_keras_weights_file_round_trip(tmp_path):
    source = se_keras.applications.SEResNet18(weights=None, input_shape=(64, 64, 3), classes=3)
    path = tmp_path / "model.weights.h5"
    source.save_weights(path)
    loaded = _build(path, input_shape=(64, 64, 3), classes=3)
    images = np.random.default_rng(0).standard_normal((2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), source.predict(images, verbose=0), atol=1e-6
    )


@pytest.mark.parametrize("name", ["se_shufflenet", "se_mobilenet", "se_vgg16"])
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_families_without_a_checkpoint_layout_refuse_torch_files(tmp_path, name, suffix):
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(b"not read")
    with pytest.raises(
        ValueError,
        match=rf"{name} has no PyTorch checkpoint layout.*"
        rf"Received: weights='{path}'",
    ):
        se_keras.applications.get_model(
            name, weights=str(path), input_shape=(64, 64, 3), include_top=False
        )


def test_garbage_checkpoints_are_one_clear_line(tmp_path):
    import argparse

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match=r"Could not read the safetensors file .*garbage"):
        se_keras.applications.SEResNet50(weights=str(garbage))
    pickled = tmp_path / "objects.pth"
    # A training script's options beside the tensors: not loadable with weights_only=True.
    torch.save({"conv.weight": torch.zeros(1), "args": argparse.Namespace(lr=0.1)}, pickled)
    with pytest.raises(ValueError) as error:
        se_keras.applications.SEResNet50(weights=str(pickled))
    message = str(error.value)
    assert "objects.pth" in message and "\n" not in message and "weights_only" not in message
