"""`se-keras validate`: top-1 / top-5 on ImageNet-style folders that the tests make, against
the classes `se-keras predict` prints for the same images; bad input is one line, exit 1 and
nothing written."""

import json
import os
import re
import shutil

import pytest
from PIL import Image

from se_keras import cli
from se_keras.applications import imagenet_utils
from tests.imagenet_like import TAG, TOP1, cli_top5, served_tag

WNIDS = [wnid for wnid, _ in imagenet_utils.class_index().values()]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """The ImageNet-like tag, served, and its pictures."""
    root = tmp_path_factory.mktemp("validate")
    with served_tag(root) as images:
        yield root, images


def _labels(images, top5):
    """A label for each picture from the top-5 `se-keras predict` gives it: for three its
    top-1 (right at top-1), for one its third class (right at top-5 only), for two a class
    outside its top-5."""
    labels = []
    for index, top in enumerate(top5):
        classes = [wnid for wnid, _ in top]
        if index < 3:
            labels.append(classes[0])
        elif index == 3:
            labels.append(classes[2])
        else:
            labels.append(next(w for w in WNIDS if w not in classes))
    return labels  # top-1 3/6 = 50%, top-5 4/6


def _class_folders(root, images, labels, classes=WNIDS):
    for wnid in classes:
        os.makedirs(root / wnid, exist_ok=True)
    for image, wnid in zip(images, labels):
        shutil.copy(image, root / wnid / os.path.basename(image))
    return root


def _validate(capsys, *args):
    code = cli.main(["validate", "se_resnet18", *map(str, args), "--weights", TAG])
    out, err = capsys.readouterr()
    return code, out, err


def test_class_folders_and_a_labels_file_give_the_cli_figures(labelled, tmp_path, capsys):
    root, images = labelled
    labels = _labels(images, cli_top5(images, capsys))
    folders = _class_folders(tmp_path / "val", images, labels)
    code, out, err = _validate(capsys, folders, "--batch-size", 4, "--json", tmp_path / "r.json")
    assert code == 0, err
    line = out.strip().splitlines()[-2]
    assert re.search(
        rf"on 6 images of .*: top-1 50\.000% \(published {TOP1:.3f}%\), top-5 66\.667%", line
    )
    assert re.search(r"[\d.]+ images/s$", line)
    assert "6/6" in out and "/image" in out  # the progress bar
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["images"] == 6 and record["top1"] == 50.0 and record["published_top1"] == TOP1

    # A flat folder and a labels file (WNIDs or class indices, names with or without their
    # extension, a header as Kaggle's LOC_val_solution.csv has): the same figures.
    flat = tmp_path / "flat"
    flat.mkdir()
    lines = ["ImageId,PredictionString"]
    for index, (image, wnid) in enumerate(zip(images, labels)):
        shutil.copy(image, flat)
        name = os.path.basename(image)
        label = wnid if index % 2 else str(WNIDS.index(wnid))
        lines.append(f"{name if index % 3 else os.path.splitext(name)[0]},{label} 1 2 3 4")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    code, out, err = _validate(capsys, flat, "--labels", tmp_path / "labels.csv", "--limit", 5)
    assert code == 0, err
    # The first five (sorted by name): three right at top-1, one at top-5 only.
    assert "on 5 images" in out and "top-1 60.000%" in out and "top-5 80.000%" in out


def _one_line_error(code, out, err, *words):
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err


def test_bad_input_is_one_line_and_writes_nothing(labelled, tmp_path, capsys):
    root, images = labelled
    result = tmp_path / "result.json"
    missing = tmp_path / "no-such-folder"
    _one_line_error(*_validate(capsys, missing, "--json", result), str(missing))

    short = _class_folders(tmp_path / "short", images[:1], WNIDS[:1], classes=WNIDS[:999])
    _one_line_error(*_validate(capsys, short, "--json", result), "999 class folders", "1000")

    odd = _class_folders(tmp_path / "odd", images[:1], WNIDS[:1], classes=WNIDS[:999] + ["cats"])
    _one_line_error(*_validate(capsys, odd, "--json", result), "not ImageNet-1k WNIDs", "cats")

    broken = _class_folders(tmp_path / "broken", images[:2], WNIDS[:2])
    (broken / WNIDS[5] / "broken.jpg").write_bytes(b"not a JPEG")
    _one_line_error(*_validate(capsys, broken, "--json", result), "broken.jpg")

    flat = tmp_path / "flat"
    flat.mkdir()
    Image.open(images[0]).save(flat / "a.png")
    (tmp_path / "bad.txt").write_text("a.png n99999999\n")
    code, out, err = _validate(capsys, flat, "--labels", tmp_path / "bad.txt", "--json", result)
    _one_line_error(code, out, err, "line 1", "n99999999")
    (tmp_path / "partial.txt").write_text("\n")
    code, out, err = _validate(capsys, flat, "--labels", tmp_path / "partial.txt")
    _one_line_error(code, out, err, "no label for 1 images", "a.png")

    # tensorflow-datasets' imagenet2012 that was never prepared: where its manual files go.
    code, out, err = _validate(capsys, "imagenet2012", "--data-dir", tmp_path / "tfds")
    _one_line_error(code, out, err, "not prepared", "manual")
    assert not result.exists()


def test_tensorflow_datasets_examples_are_read_as_files_are(labelled, monkeypatch, capsys):
    """imagenet2012 as tensorflow-datasets hands it over (encoded JPEG bytes and sorted-WNID
    labels), from a stand-in builder: no ImageNet here. The same images as PNG bytes."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    _, images = labelled
    labels = _labels(images, cli_top5(images, capsys))
    examples = {
        "image": [open(image, "rb").read() for image in images],
        "label": [WNIDS.index(wnid) for wnid in labels],
    }

    class Builder:
        data_dir = "/nowhere/imagenet2012/5.1.0"
        info = type("Info", (), {})()
        info.splits = {"validation": type("Split", (), {"num_examples": len(images)})()}
        info.features = {"label": type("Label", (), {"num_classes": 1000})()}

        def is_prepared(self):
            return True

        def as_dataset(self, split, decoders, shuffle_files):
            assert split == "validation" and not shuffle_files and "image" in decoders
            return tf.data.Dataset.from_tensor_slices(examples)

    monkeypatch.setattr(tfds, "builder", lambda name, data_dir=None: Builder())
    code, out, err = _validate(capsys, "imagenet2012")
    assert code == 0, err
    assert "on 6 images of imagenet2012 (validation)" in out
    assert "top-1 50.000%" in out and "top-5 66.667%" in out
