"""`tf.data` pipelines with the model family's preprocessing and the usual augmentation.

Sources: a tensorflow-datasets name (`cifar10`, `imagenette`, `imagenet2012` with a manual
directory, ...), the bundled `digits`, or a folder `DIR/<split>/<class>/<image>`. Nothing is
downloaded unless `download=True`.
"""

import contextlib
import dataclasses
import io
import math
import os

import numpy as np
import tensorflow as tf

from se_keras.utils.validation import check_bool, check_choice, first_line

DEFAULT_DATASET = "digits"
SMALL_IMAGE = 64  # up to this side: pad-and-crop augmentation; above: random-resized crop
_NO_FLIP = {"digits", "mnist", "emnist", "svhn_cropped", "kmnist"}  # mirrored digits differ


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    split_sizes: dict
    image_side: int  # native side, None if it varies
    class_names: tuple = ()  # by label index

    @property
    def small(self):
        """Small images (digits, CIFAR) are resized whole, larger ones cropped."""
        return self.image_side is not None and self.image_side <= SMALL_IMAGE

    def check_batch_size(self, batch_size, split="train"):
        if batch_size > self.split_sizes[split]:
            raise ValueError(
                f"--batch-size {batch_size} is larger than the {self.split_sizes[split]} "
                f"{split} examples of {self.name!r}."
            )

    def check_split(self, split):
        if split not in self.split_sizes:
            raise ValueError(
                f"Dataset {self.name!r} has no split {split!r}; it has {sorted(self.split_sizes)}."
            )


def _tfds_builder(name, data_dir):
    import tensorflow_datasets as tfds

    if name == "digits":
        from se_keras.data.digits import SeKerasDigits

        return SeKerasDigits(data_dir=data_dir)
    try:
        return tfds.builder(name, data_dir=data_dir)
    except AssertionError as error:  # tfds' answer to a version it does not have
        raise ValueError(f"Unknown dataset version: {first_line(error)}") from None
    except (tfds.core.registered.DatasetNotFoundError, ValueError):  # ValueError: a bad name
        raise ValueError(
            f"Unknown dataset {name!r}: not a tensorflow-datasets name, nor a folder holding "
            "<split>/<class>/<image> files."
        ) from None


def _prepared(name, data_dir, download):
    builder = _tfds_builder(name, data_dir)
    if name == "digits":
        with absl_errors_only():  # not "Variant folder ... has no dataset_info.json"
            prepared = builder.is_prepared()
        if not prepared:
            _prepare_quietly(builder)
        return builder
    if not builder.is_prepared():
        if download:
            builder.download_and_prepare()
        else:
            root = os.path.dirname(os.path.dirname(os.fspath(builder.data_dir)))
            manual = os.path.join(root, "downloads", "manual")
            raise ValueError(
                f"Dataset {name!r} is not prepared in {root}. Pass "
                f"--download (download=True) to fetch it, or for a manual dataset put its "
                f"files in {manual} first."
            )
    return builder


@contextlib.contextmanager
def absl_errors_only():
    import absl.logging

    verbosity = absl.logging.get_verbosity()
    absl.logging.set_verbosity(absl.logging.ERROR)
    try:
        yield
    finally:
        absl.logging.set_verbosity(verbosity)


def _prepare_quietly(builder):
    """The bundled digits take a second to prepare and download nothing: one line says so,
    instead of tensorflow-datasets' "Downloading and preparing" lines and progress bars."""
    import tensorflow_datasets as tfds

    print(f"preparing the bundled digits in {builder.data_dir} (from scikit-learn, no network)")
    tfds.disable_progress_bar()
    with absl_errors_only(), contextlib.redirect_stdout(io.StringIO()):
        builder.download_and_prepare()


def dataset_info(name, data_dir=None, download=False):
    """Classes, split sizes and native image side of a dataset (preparing `digits`)."""
    if os.path.isdir(name):
        splits = sorted(s for s in os.listdir(name) if os.path.isdir(os.path.join(name, s)))
        classes = _folder_classes(name, splits)
        sizes = {
            split: sum(len(files) for _, _, files in os.walk(os.path.join(name, split)))
            for split in splits
        }
        return DatasetInfo(name, len(classes), sizes, None, tuple(classes))
    info = _prepared(name, data_dir, download).info
    shape = info.features["image"].shape
    side = shape[0] if shape[0] and shape[0] == shape[1] else None
    label = info.features[info.supervised_keys[1]]
    sizes = {split: info.splits[split].num_examples for split in info.splits}
    return DatasetInfo(name, label.num_classes, sizes, side, tuple(label.names))


def _folder_classes(root, splits):
    """The class folders shared by every split of a `DIR/<split>/<class>/<image>` dataset."""
    by_split = {
        split: sorted(
            c
            for c in os.listdir(os.path.join(root, split))
            if os.path.isdir(os.path.join(root, split, c))
        )
        for split in splits
    }
    if not by_split:
        raise ValueError(f"The folder dataset {root!r} has no <split>/<class>/ folders.")
    first, classes = next(iter(by_split.items()))
    for split, names in by_split.items():
        if len(names) < 2:
            raise ValueError(
                f"The folder dataset {root!r} needs at least 2 class folders in each split; "
                f"{split!r} has {names}."
            )
        if names != classes:
            raise ValueError(
                f"The splits of the folder dataset {root!r} have different classes: {first!r} "
                f"has {classes}, {split!r} has {names}."
            )
    return classes


_IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what image folders read


def _first_unreadable_image(root):
    from PIL import Image

    for folder, _, names in sorted(os.walk(root)):
        for file_name in sorted(names):
            if file_name.lower().endswith(_IMAGE_SUFFIXES):
                path = os.path.join(folder, file_name)
                try:
                    with Image.open(path) as image:
                        image.verify()
                except Exception:  # PIL raises many types for a damaged file
                    return path
    return None


@contextlib.contextmanager
def naming_unreadable_images(name):
    """Around whatever iterates dataset `name`: for a folder dataset, TensorFlow's decoding
    error (which names no file) becomes a ValueError naming the first unreadable image. The
    folder is only searched once decoding has failed."""
    try:
        yield
    except tf.errors.InvalidArgumentError:
        bad = _first_unreadable_image(name) if os.path.isdir(name) else None
        if bad is None:
            raise
        raise ValueError(
            f"{bad} is not a readable image (folder dataset {name!r}); remove or replace it."
        ) from None


def _source(name, split, data_dir):
    if os.path.isdir(name):
        return _folder_source(name, split)
    builder = _prepared(name, data_dir, download=False)
    return builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)


def _folder_source(root, split):
    """(image, label) of `root/split/<class>/<image>`, each image at its own size: a view
    that keeps the aspect ratio (centre crop, random-resized crop) needs the original."""
    classes = _folder_classes(root, [split])
    paths, labels = [], []
    for label, name in enumerate(classes):
        for folder, _, names in sorted(os.walk(os.path.join(root, split, name))):
            for file_name in sorted(names):
                if file_name.lower().endswith(_IMAGE_SUFFIXES):
                    paths.append(os.path.join(folder, file_name))
                    labels.append(label)
    if not paths:
        raise ValueError(
            f"The split {split!r} of the folder dataset {root!r} holds no images "
            f"({', '.join(_IMAGE_SUFFIXES)})."
        )

    def read(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return image, label

    return tf.data.Dataset.from_tensor_slices((paths, labels)).map(read)


_NORMALISATION = {
    # mode: (mean, std) applied to images scaled to [0, 1]; the modes of keras' preprocess_input
    "torch": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "tf": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # x / 127.5 - 1
}

MODES = (*_NORMALISATION, "caffe")


def normalizer(mode):
    """A TensorFlow-only `preprocess_input` for tf.data, for a family's `PREPROCESS_MODE`
    (`"torch"`: (x / 255 - mean) / std; `"tf"`: x / 127.5 - 1; `"caffe"`: BGR - mean).
    Backend-independent, unlike calling Keras ops inside a tf.data map on the JAX or PyTorch
    backend."""
    if mode == "caffe":  # keras' VGG weights: BGR, minus the ImageNet mean, not scaled
        bgr_mean = tf.constant((103.939, 116.779, 123.68), tf.float32)
        return lambda images: images[..., ::-1] - bgr_mean
    if mode not in _NORMALISATION:
        raise ValueError(f"Unknown preprocessing mode. Received: mode={mode!r}")
    mean, std = (tf.constant(v, tf.float32) for v in _NORMALISATION[mode])
    return lambda images: (images / 255.0 - mean) / std


def _as_rgb(image):
    image = tf.cast(image, tf.float32)
    return tf.image.grayscale_to_rgb(image) if image.shape[-1] == 1 else image


INTERPOLATIONS = ("bilinear", "bicubic")  # those of torchvision's PIL Resize and of load_image


@dataclasses.dataclass(frozen=True)
class View:
    """How images are resized for a model: `interpolation` for every resize (training's
    random crops too), and the centre crop of the test split, which keeps the fraction
    `crop` of the resized shorter side (small images are resized whole).

    `torchvision=False` is this pipeline's own geometry (TensorFlow's resize without
    antialiasing, sides rounded). `True` is torchvision's `Resize` + `CenterCrop` on PIL
    images, the way timm and the authors evaluated their weights: shorter side
    `floor(size / crop)` (timm's rule), longer side truncated, centre rounded, and resized as
    PIL resizes 8-bit images (antialiased; width, then height, each pass rounded to 0..255;
    training's random crops: antialiased, in one pass).
    """

    crop: float = 0.875  # 224 of 256: the ImageNet convention
    interpolation: str = "bilinear"
    torchvision: bool = False

    def __post_init__(self):
        if isinstance(self.crop, bool) or not isinstance(self.crop, (int, float)):
            raise ValueError(f"`crop` must be a number in (0, 1]. Received: crop={self.crop!r}")
        if not 0 < self.crop <= 1:
            raise ValueError(f"`crop` must be in (0, 1]. Received: crop={self.crop!r}")
        check_choice("interpolation", self.interpolation, INTERPOLATIONS)
        check_bool("torchvision", self.torchvision)

    def resize(self, image, shape):
        """Training's resize: the interpolation, antialiased with `torchvision` (one pass,
        twice as fast as `exact_resize`; random crops need no more)."""
        return tf.image.resize(image, shape, method=self.interpolation, antialias=self.torchvision)

    def exact_resize(self, image, shape):
        """The test split's resize; with `torchvision`, PIL's two passes (the kernels of
        TensorFlow's antialiased resize), each rounded half up and clipped to 0..255 as PIL's
        8-bit images are: bicubic's overshoot at the first pass's edges is gone before the
        second."""
        if not self.torchvision:
            return self.resize(image, shape)
        for step in ((tf.shape(image)[0], shape[1]), shape):
            image = tf.clip_by_value(tf.floor(self.resize(image, step) + 0.5), 0.0, 255.0)
        return image

    def shorter_side(self, size):
        """With `torchvision=True`: the side the shorter one is resized to before the centre
        crop, timm's `floor(size / crop)` (float noise aside: 224 / (224 / 375) is
        374.99999999999994)."""
        return math.floor(round(size / self.crop, 6))

    def centre_crop(self, image, size):
        """The shorter side resized to `size / crop`, then the central `size` x `size`."""
        if not self.torchvision:
            sides = tf.cast(tf.shape(image)[:2], tf.float32)
            scale = (size / self.crop) / tf.reduce_min(sides)
            image = self.exact_resize(image, tf.cast(tf.round(sides * scale), tf.int32))
            return tf.image.resize_with_crop_or_pad(image, size, size)
        shorter = self.shorter_side(size)
        sides = tf.cast(tf.shape(image)[:2], tf.float64)
        resized = tf.cast(tf.floor(shorter * sides / tf.reduce_min(sides)), tf.int32)
        image = self.exact_resize(image, resized)
        top, left = tf.unstack(tf.cast(tf.round(tf.cast(resized - size, tf.float64) / 2), tf.int32))
        return tf.image.crop_to_bounding_box(image, top, left, size, size)


def tag_view(preprocessing):
    """The `View` of a weights tag's `WeightsInfo.preprocessing`: its `crop_pct` (or else
    `input_size / resize`) and interpolation, resized as torchvision does."""
    crop = preprocessing.get("crop_pct") or preprocessing["input_size"] / preprocessing["resize"]
    return View(crop, preprocessing["interpolation"], torchvision=True)


def tag_mode(preprocessing):
    """The `normalizer` mode applying a weights tag's mean and std (refused when none does:
    another normalisation would silently show the weights other inputs)."""
    mean, std = preprocessing["mean"], preprocessing["std"]
    for mode, (their_mean, their_std) in _NORMALISATION.items():
        if np.allclose(mean, their_mean, atol=1e-6) and np.allclose(std, their_std, atol=1e-6):
            return mode
    raise ValueError(
        "No normalizer mode applies this mean and std (modes: "
        + ", ".join(f"{m} {v[0]} / {v[1]}" for m, v in _NORMALISATION.items())
        + f"). Received: mean={tuple(mean)}, std={tuple(std)}"
    )


def _augment(image, size, small, flip, seed, view):
    """Random crop (pad-and-crop for small images, random-resized crop otherwise) and flip,
    with stateless random ops keyed by `seed` (a pair per example), so a seeded run is
    reproducible."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    if small:
        pad = max(size // 8, 1)
        image = view.resize(image, (size, size))
        image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        image = tf.image.stateless_random_crop(image, (size, size, 3), seed=seeds[0])
    else:
        begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image),
            tf.zeros((1, 0, 4)),
            seed=seeds[1],
            min_object_covered=0.0,
            aspect_ratio_range=(3 / 4, 4 / 3),
            area_range=(0.08, 1.0),
            use_image_if_no_bounding_boxes=True,
        )
        image = view.resize(tf.slice(image, begin, extent), (size, size))
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[2]) if flip else image


def _evaluate_view(image, size, small, view):
    return view.exact_resize(image, (size, size)) if small else view.centre_crop(image, size)


def evaluation_images(paths, size, small, preprocess, view=View()):
    """Image files as the test split is shown to a model: the evaluation view of
    `make_dataset` (RGB, resized or centre-cropped to `size` as `view` says), then
    `preprocess`."""
    from PIL import Image

    views = []
    for path in paths:
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
        except (OSError, ValueError) as error:
            raise ValueError(f"Could not read the image {str(path)!r}: {error}") from None
        views.append(_evaluate_view(tf.constant(pixels), size, small, view))
    return preprocess(tf.stack(views)).numpy()


def make_dataset(
    name,
    split,
    image_size,
    batch_size,
    preprocess,
    training,
    seed=None,
    data_dir=None,
    deterministic=False,
    drop_remainder=False,
    view=View(),
):
    """Batches of (preprocessed RGB images, integer labels).

    Args:
        name: a tensorflow-datasets name, `"digits"` or a folder.
        split: e.g. `"train"`, `"test"`.
        image_size: side of the square model input.
        batch_size: examples per batch.
        preprocess: the model family's `preprocess_input` (takes RGB in [0, 255]).
        training: shuffle and augment (random crop, and flips where they keep the label).
        seed: seed of the shuffle and augmentation; with `deterministic=True` the order and
            the augmentation are reproducible.
        view: a `View`: the interpolation, and the test split's centre crop (default: 0.875,
            bilinear; `tag_view` gives a weights tag's own).
    """
    if not isinstance(view, View):
        raise ValueError(f"`view` must be a `View`. Received: view={view!r}")
    info = dataset_info(name, data_dir)
    info.check_split(split)
    small = info.small
    flip = name not in _NO_FLIP
    dataset = _source(name, split, data_dir)
    if training:
        dataset = dataset.shuffle(
            min(info.split_sizes[split], 10_000), seed=seed, reshuffle_each_iteration=True
        )
        # One random key per example, different in every epoch, reproducible from `seed`.
        keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip((dataset, keys)).map(
            lambda example, key: (
                preprocess(_augment(_as_rgb(example[0]), image_size, small, flip, key, view)),
                example[1],
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic or None,
        )
    else:
        dataset = dataset.map(
            lambda image, label: (
                preprocess(_evaluate_view(_as_rgb(image), image_size, small, view)),
                label,
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic or None,
        )
    options = tf.data.Options()
    options.deterministic = deterministic
    return (
        dataset.with_options(options)
        .batch(batch_size, drop_remainder=drop_remainder)
        .prefetch(tf.data.AUTOTUNE)
    )
