"""Input pipelines: the bundled digits, tensorflow-datasets errors, image folders."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from se_keras import data
from se_keras.applications import se_resnet


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def test_digits_splits_and_contents(data_dir):
    from sklearn.datasets import load_digits

    info = data.dataset_info("digits", data_dir)
    assert (info.num_classes, info.split_sizes, info.image_side) == (
        10,
        {"train": 1437, "test": 360},
        8,
    )
    digits = load_digits()
    test = data.make_dataset(
        "digits", "test", 32, 360, lambda x: x, training=False, data_dir=data_dir
    )
    images, labels = next(iter(test))
    np.testing.assert_array_equal(np.sort(labels.numpy()), np.sort(digits.target[::5]))
    assert images.shape == (360, 32, 32, 3) and float(tf.reduce_max(images)) <= 255.0


def test_training_view_is_augmented_and_preprocessed(data_dir):
    def first_batch():
        train = data.make_dataset(
            "digits",
            "train",
            32,
            16,
            se_resnet.preprocess_input,
            training=True,
            seed=3,
            data_dir=data_dir,
            deterministic=True,
        )
        return next(iter(train))[0].numpy()

    first, second = first_batch(), first_batch()
    np.testing.assert_array_equal(first, second)  # a seeded run is reproducible
    # The authors' normalisation: black pixels map to -mean/std per channel.
    assert first.min() == pytest.approx(-0.485 / 0.229, abs=1e-4)


def test_unknown_and_missing_datasets_say_what_to_do(data_dir):
    with pytest.raises(ValueError, match="Unknown dataset 'no_such_dataset'"):
        data.dataset_info("no_such_dataset", data_dir)
    # A missing folder is not a tfds name either: one line, not tfds' page of name formats.
    with pytest.raises(ValueError, match=r"^Unknown dataset '/no/such/folder': [^\n]*$"):
        data.dataset_info("/no/such/folder", data_dir)
    with pytest.raises(ValueError, match=r"version: .*mnist cannot be loaded at version 99"):
        data.dataset_info("mnist:99.0.0", data_dir)
    with pytest.raises(ValueError, match=r"'imagenet2012' is not prepared.*downloads/manual"):
        data.dataset_info("imagenet2012", data_dir)
    with pytest.raises(ValueError, match=r"no split 'validation'"):
        data.make_dataset("digits", "validation", 32, 8, lambda x: x, False, data_dir=data_dir)


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("test", 2)):
        for label in ("cat", "dog"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(
                    folder / f"{i}.png"
                )
    info = data.dataset_info(str(tmp_path))
    assert (info.num_classes, info.split_sizes) == (2, {"test": 4, "train": 6})
    batches = data.make_dataset(str(tmp_path), "train", 64, 6, lambda x: x, training=True, seed=0)
    images, labels = next(iter(batches))
    assert images.shape == (6, 64, 64, 3) and sorted(labels.numpy()) == [0, 0, 0, 1, 1, 1]


def test_tf_normalizer_matches_each_family_preprocess_input():
    import se_keras

    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    for family in se_keras.applications.FAMILIES:
        expected = family.preprocess_input(images.copy())
        got = data.normalizer(family.PREPROCESS_MODE)(tf.constant(images)).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=family.__name__)


@pytest.mark.parametrize(
    "layout, message",
    [
        ({"train": ["cat"], "test": ["cat"]}, r"at least 2 class folders.*'test' has \['cat'\]"),
        ({"train": ["cat", "dog"], "test": ["cat", "cow"]}, r"different classes.*'test' has"),
    ],
)
def test_image_folders_with_too_few_or_different_classes(tmp_path, layout, message):
    for split, labels in layout.items():
        for label in labels:
            (tmp_path / split / label).mkdir(parents=True)
    with pytest.raises(ValueError, match=message):
        data.dataset_info(str(tmp_path))


def test_preparing_the_bundled_digits_is_one_line(tmp_path, capfd):
    data.dataset_info("digits", str(tmp_path / "fresh"))
    out, err = capfd.readouterr()
    assert out.splitlines() == [
        f"preparing the bundled digits in {tmp_path / 'fresh' / 'se_keras_digits' / '1.0.0'} "
        "(from scikit-learn, no network)"
    ]
    assert "Downloading and preparing" not in out + err and "Variant folder" not in err
