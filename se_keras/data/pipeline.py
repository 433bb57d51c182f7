"""`tf.data` pipelines with the model family's preprocessing and the usual augmentation.

Sources: a tensorflow-datasets name (`cifar10`, `imagenette`, `imagenet2012` with a manual
directory, ...), the bundled `digits`, or a folder `DIR/<split>/<class>/<image>`. Nothing is
downloaded unless `download=True`.
"""

import contextlib
import dataclasses
import io
import os

import numpy as np
import tensorflow as tf

from se_keras.utils.validation import first_line

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
        with _absl_errors_only():  # not "Variant folder ... has no dataset_info.json"
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
def _absl_errors_only():
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
    with _absl_errors_only(), contextlib.redirect_stdout(io.StringIO()):
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
        return tf.keras.utils.image_dataset_from_directory(
            os.path.join(name, split), batch_size=None, shuffle=False, image_size=(256, 256)
        )
    builder = _prepared(name, data_dir, download=False)
    return builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)


_NORMALISATION = {
    # mode: (mean, std) applied to images scaled to [0, 1]; the modes of keras' preprocess_input
    "torch": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "tf": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # x / 127.5 - 1
}


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


def _augment(image, size, small, flip, seed):
    """Random crop (pad-and-crop for small images, random-resized crop otherwise) and flip,
    with stateless random ops keyed by `seed` (a pair per example), so a seeded run is
    reproducible."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    if small:
        pad = max(size // 8, 1)
        image = tf.image.resize(image, (size, size))
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
        image = tf.image.resize(tf.slice(image, begin, extent), (size, size))
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[2]) if flip else image


def _evaluate_view(image, size, small):
    if small:
        return tf.image.resize(image, (size, size))
    # Resize the shorter side to size / 0.875 and take the centre (256 -> 224 for ImageNet).
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (size / 0.875) / tf.reduce_min(shape)
    image = tf.image.resize(image, tf.cast(tf.round(shape * scale), tf.int32))
    return tf.image.resize_with_crop_or_pad(image, size, size)


def evaluation_images(paths, size, small, preprocess):
    """Image files as the test split is shown to a model: the evaluation view of
    `make_dataset` (RGB, resized or centre-cropped to `size`), then `preprocess`."""
    from PIL import Image

    views = []
    for path in paths:
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
        except (OSError, ValueError) as error:
            raise ValueError(f"Could not read the image {str(path)!r}: {error}") from None
        views.append(_evaluate_view(tf.constant(pixels), size, small))
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
    """
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
                preprocess(_augment(_as_rgb(example[0]), image_size, small, flip, key)),
                example[1],
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic or None,
        )
    else:
        dataset = dataset.map(
            lambda image, label: (
                preprocess(_evaluate_view(_as_rgb(image), image_size, small)),
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
