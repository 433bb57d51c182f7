"""ImageNet validation images for `se-keras validate`: labelled examples from a folder of
class folders (`<wnid>/<image>`), from a flat folder and a labels file, or from
tensorflow-datasets' `imagenet2012` (prepared from its manual download).

Labels are indices in sorted-WNID order, the order of the released models' outputs
(`se_keras.applications.imagenet_utils.class_index`) and of tensorflow-datasets' labels.
"""

import dataclasses
import io
import os
import re
from collections.abc import Callable

from se_keras.applications import imagenet_utils

TFDS_NAME = "imagenet2012"
EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp")
_KAGGLE_HEADER = "ImageId,PredictionString"  # LOC_val_solution.csv: "<stem>,<wnid> <box> ..."


@dataclasses.dataclass(frozen=True)
class Examples:
    """`count` labelled images: `iterate()` yields (image file or file-like, label, name)."""

    description: str
    count: int
    iterate: Callable


def examples(data, labels=None, data_dir=None, classes=1000):
    """The labelled validation images of `data`: a folder, or "imagenet2012"."""
    wnids = {wnid: index for index, (wnid, _) in imagenet_utils.class_index().items()}
    if os.path.isdir(data):
        if labels is not None:
            return _flat(data, labels, wnids, classes)
        return _class_folders(data, wnids, classes)
    if labels is not None:
        raise ValueError(f"--labels goes with a folder of images. Received: {data!r}")
    if data == TFDS_NAME:
        return _tfds(data_dir, classes)
    raise ValueError(
        f"No such folder: {data!r} (expected a folder of ImageNet validation images, or "
        f"{TFDS_NAME!r} for tensorflow-datasets)"
    )


def _images(folder):
    return sorted(
        name
        for name in os.listdir(folder)
        if name.lower().endswith(EXTENSIONS) and os.path.isfile(os.path.join(folder, name))
    )


def _class_folders(root, wnids, classes):
    folders = sorted(f for f in os.listdir(root) if os.path.isdir(os.path.join(root, f)))
    if not folders:
        raise ValueError(
            f"{root} holds no class folders (<wnid>/<image>); for a flat folder of images, "
            "give --labels FILE"
        )
    unknown = [f for f in folders if f not in wnids]
    if unknown:
        raise ValueError(
            f"{root}: {len(unknown)} folders are not ImageNet-1k WNIDs (first: {unknown[0]!r})"
        )
    if len(folders) != classes:
        raise ValueError(
            f"{root} has {len(folders)} class folders; ImageNet validation has {classes} "
            "(one per WNID)"
        )
    pairs = [
        (os.path.join(root, folder, name), wnids[folder])
        for folder in folders
        for name in _images(os.path.join(root, folder))
    ]
    return _from_files(root, pairs)


def _flat(root, labels, wnids, classes):
    if not os.path.isfile(labels):
        raise ValueError(f"No such labels file: {labels}")
    images = {os.path.splitext(name)[0]: name for name in _images(root)}
    images.update({name: name for name in images.values()})  # with or without extension
    pairs = {}
    with open(labels) as file:
        for number, line in enumerate(file, start=1):
            if not line.strip() or (number == 1 and line.strip() == _KAGGLE_HEADER):
                continue
            fields = re.split(r"[\s,]+", line.strip())
            label = _label(fields[1] if len(fields) > 1 else "", wnids, classes)
            if label is None:
                raise ValueError(
                    f"{labels}, line {number}: expected '<image> <WNID or class index "
                    f"0-{classes - 1}>'. Received: {line.strip()[:80]!r}"
                )
            if fields[0] not in images:
                raise ValueError(f"{labels}, line {number}: no image {fields[0]!r} in {root}")
            pairs[images[fields[0]]] = label
    unlabelled = sorted(set(images.values()) - set(pairs))
    if unlabelled:
        raise ValueError(
            f"{labels} gives no label for {len(unlabelled)} images of {root} "
            f"(first: {unlabelled[0]})"
        )
    if not pairs:
        raise ValueError(f"{labels} labels no image")
    return _from_files(root, [(os.path.join(root, n), pairs[n]) for n in sorted(pairs)])


def _label(text, wnids, classes):
    if text in wnids:
        return wnids[text]
    if text.isdigit() and int(text) < classes:
        return int(text)
    return None


def _from_files(root, pairs):
    if not pairs:
        raise ValueError(f"{root} holds no images ({', '.join(EXTENSIONS)})")

    def iterate():
        for path, label in pairs:
            yield path, label, path

    return Examples(root, len(pairs), iterate)


def _tfds(data_dir, classes):
    import tensorflow_datasets as tfds

    from se_keras.data import pipeline

    builder = tfds.builder(TFDS_NAME, data_dir=data_dir)
    with pipeline.absl_errors_only():  # not "Variant folder ... has no dataset_info.json"
        ready = builder.is_prepared()
    if not ready:
        root = os.path.dirname(os.path.dirname(os.fspath(builder.data_dir)))
        raise ValueError(
            f"{TFDS_NAME} is not prepared in {root}: put ILSVRC2012_img_val.tar (and "
            f"ILSVRC2012_img_train.tar) in {os.path.join(root, 'downloads', 'manual')}, then "
            f"run `tfds build {TFDS_NAME} --data_dir {root}` (tensorflow-datasets' manual "
            "download)"
        )
    split = builder.info.splits["validation"]
    if builder.info.features["label"].num_classes != classes:
        raise ValueError(
            f"{TFDS_NAME} here has {builder.info.features['label'].num_classes} "
            f"classes, not {classes}"
        )
    dataset = builder.as_dataset(
        split="validation", decoders={"image": tfds.decode.SkipDecoding()}, shuffle_files=False
    )

    def iterate():
        for index, example in enumerate(tfds.as_numpy(dataset)):
            name = f"{TFDS_NAME} validation example {index}"
            yield io.BytesIO(example["image"]), int(example["label"]), name

    return Examples(f"{TFDS_NAME} (validation) in {builder.data_dir}", split.num_examples, iterate)
