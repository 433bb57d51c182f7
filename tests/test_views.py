"""How images are shown to a model: a weights tag's own view (crop, interpolation, mean/std)
in the tf.data pipelines, `evaluate`, fine-tuning runs and their config.json."""

import dataclasses
import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import se_keras
from se_keras import applications, data, weights
from se_keras.applications import _registry
from se_keras.data import View, pipeline
from se_keras.training import TrainConfig, evaluate
from se_keras.training import run as run_lib

# The view resizes as PIL does (same kernels, two passes rounded to 8 bits), in float32
# where PIL computes in fixed point: a value within ~1e-4 of a rounding step can land on the
# other side, by 1 grey level (2 when both passes do). Measured on the images below and on a
# 600x512 photograph: at most 0.5% of the values differ, max 2, mean <= 0.005 (0..255).
# Far outside: one antialiased pass (mean 0.29, max 16 at the checkerboard), a crop one
# pixel off (mean 2.8 to 14), the pipeline's original geometry (4 to 14 where it downscales).
MAX_DIFFERENCE, MEAN_DIFFERENCE = 2.0, 0.02
_PIL = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def smooth_image(height, width, seed):
    """Random-phase sines: varied (a shift shows) and smooth, but for a black and white
    checkerboard (where bicubic overshoots 0..255, which PIL clips after each pass)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / 25.0
    channels = [
        127
        + 90
        * np.sin(x * rng.uniform(0.5, 1.5) + rng.uniform(0, 6))
        * np.cos(y * rng.uniform(0.5, 1.5) + rng.uniform(0, 6))
        for _ in range(3)
    ]
    pixels = np.round(np.stack(channels, -1)).astype(np.uint8)
    pixels[100:160, 100:160] = (
        255 * (np.add.outer(np.arange(60) // 6, np.arange(60) // 9) % 2)[..., None]
    )
    return pixels


def assert_as_pil(image, expected):
    difference = np.abs(image - expected)
    assert difference.max() <= MAX_DIFFERENCE and difference.mean() <= MEAN_DIFFERENCE, (
        difference.max(),
        difference.mean(),
    )


def torchvision_view(pixels, size, crop, interpolation, shift=0):
    """timm's evaluation transform on PIL, written out: Resize(floor(size / crop)) (shorter
    side; the longer one truncated), then CenterCrop(size) (offsets rounded)."""
    image = Image.fromarray(pixels)
    width, height = image.size
    shorter = math.floor(size / crop)
    if width <= height:
        resized = (shorter, int(shorter * height / width))
    else:
        resized = (int(shorter * width / height), shorter)
    image = image.resize(resized, _PIL[interpolation])
    left = int(round((resized[0] - size) / 2.0)) + shift
    top = int(round((resized[1] - size) / 2.0))
    return np.asarray(image.crop((left, top, left + size, top + size)), np.float32)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder dataset: a 300x260 landscape and a 260x300 portrait image in each split."""
    root = tmp_path_factory.mktemp("views")
    images = {"landscape": smooth_image(260, 300, 0), "portrait": smooth_image(300, 260, 1)}
    for split in ("train", "test"):
        for name, pixels in images.items():
            (root / split / name).mkdir(parents=True)
            Image.fromarray(pixels).save(root / split / name / "0.png")
    return str(root), [images["landscape"], images["portrait"]]


def test_folder_images_keep_their_own_size(folder, tmp_path):
    root, sources = folder
    images = [image.numpy() for image, _ in pipeline._source(root, "test", None)]
    assert [image.shape for image in images] == [(260, 300, 3), (300, 260, 3)]
    np.testing.assert_array_equal(images[1], sources[1])  # PNG: the same pixels
    for name in ("a", "b"):
        (tmp_path / "test" / name).mkdir(parents=True)
    (tmp_path / "test" / "a" / "notes.txt").write_text("no image")
    with pytest.raises(ValueError, match=r"split 'test' of the folder dataset .* holds no images"):
        data.make_dataset(str(tmp_path), "test", 32, 2, lambda x: x, False)


def _test_split(root, size, view, preprocess=lambda x: x):
    batch = data.make_dataset(
        root, "test", size, 2, preprocess, training=False, deterministic=True, view=view
    )
    return next(iter(batch))[0].numpy()


@pytest.mark.parametrize(
    "size, crop, interpolation",
    [
        (224, 0.875, "bicubic"),  # the shorter side 260 -> 256
        (200, 0.95, "bicubic"),  # 260 -> 210
        (288, 1.0, "bicubic"),  # 260 -> 288: upscaled
        (160, 0.875, "bilinear"),  # 260 -> 182
    ],
)
def test_a_tag_view_is_torchvision_resize_and_centre_crop(folder, size, crop, interpolation):
    root, sources = folder
    got = _test_split(root, size, View(crop, interpolation, torchvision=True))
    for image, pixels in zip(got, sources):
        expected = torchvision_view(pixels, size, crop, interpolation)
        assert_as_pil(image, expected)
        # The tolerance sees a crop one pixel off.
        shifted = torchvision_view(pixels, size, crop, interpolation, shift=1)
        assert np.abs(image - shifted).mean() > 50 * MEAN_DIFFERENCE


def _original_view(image, size):
    """The pipeline's evaluation view before views existed (se-keras 0.x, verbatim)."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (size / 0.875) / tf.reduce_min(shape)
    image = tf.image.resize(image, tf.cast(tf.round(shape * scale), tf.int32))
    return tf.image.resize_with_crop_or_pad(image, size, size)


def test_the_default_view_is_the_original_one(folder):
    root, sources = folder
    for size in (224, 160, 100, 37):  # 37 / 0.875 = 42.3, 100 / 0.875 = 114.3: sides rounded
        expected = np.stack([_original_view(tf.constant(p, tf.float32), size) for p in sources])
        unset = data.make_dataset(root, "test", size, 2, lambda x: x, False, deterministic=True)
        np.testing.assert_array_equal(next(iter(unset))[0].numpy(), expected)
        np.testing.assert_array_equal(_test_split(root, size, View()), expected)


def test_training_resizes_with_the_views_interpolation(folder, monkeypatch):
    root, _ = folder
    calls = []
    resize = tf.image.resize

    def recording(*args, **kwargs):
        calls.append((kwargs.get("method", "bilinear"), kwargs.get("antialias", False)))
        return resize(*args, **kwargs)

    monkeypatch.setattr(tf.image, "resize", recording)
    view = View(0.9, "bicubic", torchvision=True)
    seed = tf.constant([1, 2], tf.int64)
    image = tf.constant(smooth_image(200, 250, 2), tf.float32)
    for small in (True, False):  # pad-and-crop, random-resized crop
        assert pipeline._augment(image, 32, small, True, seed, view).shape == (32, 32, 3)
    train = data.make_dataset(root, "train", 32, 2, lambda x: x, training=True, seed=0, view=view)
    assert next(iter(train))[0].shape == (2, 32, 32, 3)
    assert len(calls) >= 3 and set(calls) == {("bicubic", True)}


def test_the_view_and_mode_of_every_registered_tag():
    seen = 0
    for model in applications.list_models(pretrained=True):
        for tag in applications.tags(model) - {applications.BASE_TAG}:
            preprocessing = applications.get_weights(model, tag).preprocessing
            view = pipeline.tag_view(preprocessing)
            # The view resizes to the side the tag declares (timm: floor(size / crop_pct)).
            assert view.shorter_side(preprocessing["input_size"]) == preprocessing["resize"]
            assert view.interpolation == preprocessing["interpolation"] and view.torchvision
            assert pipeline.tag_mode(preprocessing) == "torch"
            seen += 1
    assert seen >= 20
    assert pipeline.tag_view(weights.IMAGENET) == View(0.875, "bilinear", torchvision=True)
    timm = applications.get_weights("timm_seresnet50", "a3_in1k").preprocessing
    assert pipeline.tag_view(timm) == View(0.95, "bicubic", torchvision=True)
    assert pipeline.tag_mode({"mean": (0.5,) * 3, "std": (0.5,) * 3}) == "tf"


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"crop": 0}, "Received: crop=0"),
        ({"crop": 1.5}, "Received: crop=1.5"),
        ({"crop": "0.9"}, "Received: crop='0.9'"),
        ({"crop": True}, "Received: crop=True"),
        ({"interpolation": "lanczos3"}, "Received: interpolation='lanczos3'"),
        ({"torchvision": "yes"}, "Received: torchvision='yes'"),
    ],
)
def test_bad_views_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        View(**arguments)
    with pytest.raises(ValueError, match=message):
        TrainConfig(view=arguments).check()


def test_bad_view_arguments_and_unknown_normalisations_are_refused(folder):
    with pytest.raises(ValueError, match=r"Received: view='bicubic'"):
        data.make_dataset(folder[0], "test", 32, 2, lambda x: x, False, view="bicubic")
    with pytest.raises(ValueError, match=r"Received: view=\{'size': 3\}"):
        TrainConfig(view={"size": 3}).check()
    with pytest.raises(ValueError, match=r"Received: normalization='bgr'"):
        TrainConfig(normalization="bgr").check()
    clip = {"mean": (0.4815, 0.4578, 0.4082), "std": (0.2686, 0.2613, 0.2758)}
    with pytest.raises(ValueError, match=r"No normalizer.*Received: mean=\(0.4815, "):
        pipeline.tag_mode(clip)


TINY = {**weights.IMAGENET, "input_size": 40, "resize": 50, "crop_pct": 0.8}
TINY["interpolation"] = "bicubic"


@pytest.fixture
def tiny_tag(monkeypatch):
    """se_resnet18's tag "tiny" (40 px, crop 0.8, bicubic), registered for one test; no
    file behind it: the tests build the model without weights."""
    monkeypatch.setattr(_registry, "_WEIGHTS", {k: dict(v) for k, v in _registry._WEIGHTS.items()})
    applications.register_weights(
        "se_resnet18", "tiny", "http://127.0.0.1:9/tiny.weights.h5", "ab" * 4, None, TINY
    )
    return pipeline.tag_view(TINY)


def _pixels(normalized):
    """Images normalised with ImageNet's mean and std, back in 0..255."""
    mean, std = np.array(weights.IMAGENET["mean"]), np.array(weights.IMAGENET["std"])
    return (normalized * std + mean) * 255


def test_evaluate_with_a_tag_shows_the_test_split_as_the_tag_says(folder, tiny_tag, monkeypatch):
    root, sources = folder
    built, splits = [], []

    def get_model(name, weights, input_shape, classes):
        built.append(input_shape)
        return se_keras.applications.SEResNet18(
            weights=None, input_shape=input_shape, classes=classes
        )

    make_dataset = data.make_dataset

    def recording(*args, **kwargs):
        splits.append(make_dataset(*args, **kwargs))
        return splits[-1]

    monkeypatch.setattr(applications, "get_model", get_model)
    monkeypatch.setattr(data, "make_dataset", recording)
    result = evaluate("se_resnet18", "tiny", root, batch_size=2)
    assert built == [(40, 40, 3)] and 0 <= result["top1"] <= 1
    images, labels = next(iter(splits[-1]))
    for image, label in zip(images.numpy(), labels.numpy()):  # in any order
        pixels = sources[label]
        assert_as_pil(_pixels(image), torchvision_view(pixels, 40, 0.8, "bicubic"))
    evaluate("se_resnet18", "tiny", root, batch_size=2, image_size=48)
    assert built[-1] == (48, 48, 3)


def test_fine_tuning_from_a_tag_records_its_view_for_predict(
    folder, tiny_tag, monkeypatch, tmp_path
):
    root, sources = folder
    build_model = run_lib.build_model

    def without_download(config, *args):  # the tag has no file: the network starts random
        return build_model(dataclasses.replace(config, weights=None), *args)

    monkeypatch.setattr(run_lib, "build_model", without_download)
    out = str(tmp_path / "run")
    config = TrainConfig(
        dataset=root, weights="tiny", epochs=1, batch_size=2, image_size=40, export="none"
    )
    run_lib.train(dataclasses.replace(config, jit_compile=False), out)
    with open(os.path.join(out, "config.json")) as file:
        recorded = json.load(file)
    assert recorded["view"] == {"crop": 0.8, "interpolation": "bicubic", "torchvision": True}
    assert recorded["normalization"] == "torch"
    paths = [os.path.join(root, "test", name, "0.png") for name in ("landscape", "portrait")]
    model, names, inputs = run_lib.load_run(os.path.join(out, "model.keras"))
    assert names == ("landscape", "portrait") and model.input.shape[1] == 40
    shown = inputs(paths)
    for image, pixels in zip(shown, sources):
        assert_as_pil(_pixels(image), torchvision_view(pixels, 40, 0.8, "bicubic"))
    # config.json round trip: a re-run of the same configuration resumes, another view not.
    info = data.dataset_info(root)
    resolved = run_lib._with_tag_view(
        dataclasses.replace(config, jit_compile=False).resolved(info), TINY
    )
    resolved.claim(out)
    with pytest.raises(ValueError, match=r"differs in: view\)"):
        dataclasses.replace(resolved, view={**resolved.view, "crop": 0.9}).claim(out)
    # evaluate on the run's model: its size and view.
    views = []
    make_dataset = data.make_dataset

    def recording(*args, view, **kwargs):
        views.append((args[2], view))
        return make_dataset(*args, view=view, **kwargs)

    monkeypatch.setattr(data, "make_dataset", recording)
    evaluate("se_resnet18", os.path.join(out, "model.keras"), root, batch_size=2)
    assert views == [(40, tiny_tag)] * 2  # train and test splits
    # A config.json from before views: the default view, as that run was shown.
    del recorded["view"], recorded["normalization"]
    with open(os.path.join(out, "config.json"), "w") as file:
        json.dump(recorded, file)
    normalize = data.normalizer("torch")
    original = pipeline.evaluation_images(paths, 40, False, normalize)
    np.testing.assert_array_equal(
        run_lib.load_run(os.path.join(out, "model.keras"))[2](paths), original
    )
    assert np.abs(_pixels(original) - _pixels(shown)).mean() > 50 * MEAN_DIFFERENCE
    keras.backend.clear_session()
