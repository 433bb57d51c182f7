"""The `se-keras` command: list, convert, predict; bad input gives one line and exit 1."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import se_keras
from se_keras import cli
from se_keras.applications import imagenet_utils
from tests.helpers import randomize, reference_outputs


@pytest.fixture(scope="module")
def checkpoint(senet, tmp_path_factory):
    ref = randomize(senet.se_resnet50(pretrained=None), seed=21)
    path = tmp_path_factory.mktemp("ckpt") / "se_resnet50.pth"
    torch.save(ref.state_dict(), path)
    return ref, str(path)


def test_list_prints_the_model_table(capsys):
    assert cli.main(["list", "se_resnet18", "se_resnet50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["model", "input", "parameters"]
    assert lines[3].split() == [
        "se_resnet50",
        "224x224",
        "28.09M",
        "3.87G",
        "3.87G",
        "-",
        "imagenet",
    ]


def test_bad_model_name_is_one_line_and_exit_1():
    result = subprocess.run(
        [sys.executable, "-m", "se_keras.cli", "list", "se_resnet9"], capture_output=True, text=True
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("se-keras")]
    assert result.returncode == 1 and result.stdout == ""
    assert (
        errors == [errors[0]] and "'se_resnet9'" in errors[0] and "Traceback" not in result.stderr
    )


def test_convert_writes_verified_weights(checkpoint, tmp_path, capsys):
    ref, path = checkpoint
    output = tmp_path / "converted.weights.h5"
    assert cli.main(["convert", "se_resnet50", path, "-o", str(output)]) == 0
    assert "verified: max |logit difference|" in capsys.readouterr().out
    model = se_keras.applications.SEResNet50(weights=str(output), classifier_activation=None)
    images = np.random.default_rng(5).standard_normal((1, 224, 224, 3), dtype=np.float32)
    expected = reference_outputs(ref, images)
    assert (
        np.abs(model.predict(images, verbose=0) - expected).max() <= 1e-4 * np.abs(expected).max()
    )


@pytest.mark.parametrize(
    "model, output, message",
    [
        ("se_resnet50", "out.h5", "must end in .weights.h5"),
        ("se_resnext50", "out.weights.h5", "has shape"),  # another architecture's checkpoint
    ],
)
def test_convert_failures_write_nothing(checkpoint, tmp_path, capsys, model, output, message):
    _, path = checkpoint
    assert cli.main(["convert", model, path, "-o", str(tmp_path / output)]) == 1
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def _torchvision_pipeline(path):
    """Resize(256) + CenterCrop(224) + ToTensor + Normalize, written out as torchvision does."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    array = np.asarray(image.resize(size, Image.BILINEAR), dtype=np.float64) / 255.0
    top, left = int(round((size[1] - 224) / 2.0)), int(round((size[0] - 224) / 2.0))
    array = array[top : top + 224, left : left + 224]
    return ((array - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).astype(np.float32)


@pytest.mark.parametrize("size", [(400, 300), (257, 611)])
def test_preprocessing_matches_the_reference_pipeline(tmp_path, size):
    path = tmp_path / "image.png"
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    ours = imagenet_utils.preprocess_input(imagenet_utils.load_image(path))
    assert ours.shape == (224, 224, 3)
    assert np.abs(ours - _torchvision_pipeline(path)).max() <= 1e-5


def test_predict_end_to_end(checkpoint, tmp_path, capsys):
    ref, path = checkpoint
    image = tmp_path / "photo.jpg"
    pixels = np.random.default_rng(1).integers(0, 256, (300, 360, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image)
    assert cli.main(["predict", "se_resnet50", str(image), "--weights", path, "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    logits = reference_outputs(ref, _torchvision_pipeline(image)[None])[0]
    expected = [imagenet_utils.class_index()[i][0] for i in np.argsort(logits)[::-1][:3]]
    assert lines[0] == str(image) and [line.split()[2] for line in lines[1:]] == expected


def test_predict_missing_image(capsys):
    assert cli.main(["predict", "se_resnet50", "no/such.jpg", "--weights", "imagenet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no/such.jpg" in err[0]


def test_convert_keeps_an_existing_output_unless_forced(checkpoint, tmp_path, capsys):
    _, path = checkpoint
    output = tmp_path / "existing.weights.h5"
    output.write_bytes(b"keep me")
    assert cli.main(["convert", "se_resnet50", path, "-o", str(output)]) == 1
    assert "exists; add --force" in capsys.readouterr().err
    assert output.read_bytes() == b"keep me"


@pytest.mark.parametrize("option", ["--classes", "--input-size"])
def test_export_refuses_non_positive_sizes_in_one_line(tmp_path, capsys, option):
    argv = [
        "export",
        "se_resnet18",
        "--format",
        "onnx",
        "-o",
        str(tmp_path / "x.onnx"),
        option,
        "0",
    ]
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    error = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code == 2 and len(error) == 1 and "'0'" in error[0]
    assert os.listdir(tmp_path) == []


def test_export_into_a_missing_folder_fails_before_fetching_weights(tmp_path, capsys):
    output = tmp_path / "no" / "x.onnx"
    # The default weights are "imagenet": a download would come first and fail offline.
    assert cli.main(["export", "se_resnet18", "--format", "onnx", "-o", str(output)]) == 1
    captured = capsys.readouterr()
    error = captured.err.strip().splitlines()
    assert len(error) == 1 and f"No such folder: {tmp_path / 'no'}" in error[0]
    assert "Downloading" not in captured.out and os.listdir(tmp_path) == []


def test_the_installed_command_prints_one_line_and_no_start_up_chatter():
    command = os.path.join(os.path.dirname(sys.executable), "se-keras")
    result = subprocess.run([command, "list", "se_resnet9"], capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()]  # one line: no TF notices
    assert result.stderr.startswith("se-keras list: error: Unknown model name")


def test_train_help_shows_one_true_default_per_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out.split("options:", 1)[1]
    # One entry per option: its line and the help lines indented under it.
    entries = {
        entry.split()[0].rstrip(","): " ".join(entry.split())
        for entry in re.split(r"\n(?=  -)", text)
        if entry.strip()
    }
    assert all(entry.count("(default") <= 1 for entry in entries.values()), entries
    assert "(default: True)" not in entries["--no-xla"]  # a flag: its help says what it does
    assert entries["--learning-rate"].endswith("(default: 0.1 x batch/256 for SGD, 1e-3 AdamW)")
    assert entries["--image-size"].endswith("(default: 32 for small images, else 224)")
    assert entries["--epochs"].endswith("(default: 6)")


def test_predict_normalises_as_the_family_does(tmp_path, capsys, monkeypatch):
    """SE-MobileNet takes keras' "tf" normalisation (x / 127.5 - 1), not the authors' mean
    and std: what `se-keras predict` hands the model is the family's `preprocess_input`."""
    model = se_keras.applications.SEMobileNet(weights=None)
    model.save_weights(tmp_path / "mobile.weights.h5")
    image = tmp_path / "photo.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(image)
    seen, build = [], se_keras.applications.get_model

    def recording(name, **kwargs):
        built = build(name, **kwargs)
        predict = built.predict
        built.predict = lambda x, **options: (seen.append(np.asarray(x)), predict(x, **options))[1]
        return built

    monkeypatch.setattr(se_keras.applications, "get_model", recording)
    weights = str(tmp_path / "mobile.weights.h5")
    assert cli.main(["predict", "se_mobilenet", str(image), "--weights", weights]) == 0
    expected = se_keras.applications.se_mobilenet.preprocess_input(imagenet_utils.load_image(image))
    np.testing.assert_allclose(seen[0][0], expected, atol=1e-6)
    assert seen[0].min() >= -1 and seen[0].max() <= 1
