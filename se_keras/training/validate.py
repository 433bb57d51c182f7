"""`se-keras validate`, as timm's validate.py: the top-1 / top-5 of a model and weights on
ImageNet validation images, each shown as its weights were evaluated (the tag's size, crop,
interpolation and normalisation, through the same PIL path as `se-keras predict`)."""

import concurrent.futures
import dataclasses
import json
import time

import keras
import numpy as np

from se_keras import applications, weights
from se_keras.applications import imagenet_utils
from se_keras.data import imagenet
from se_keras.utils import files
from se_keras.utils.validation import check_positive


@dataclasses.dataclass(frozen=True)
class Result:
    model: str
    weights: str
    data: str
    images: int
    top1: float  # percent
    top5: float
    published_top1: float  # the tag's reported top-1 (percent), or None
    seconds: float

    @property
    def images_per_second(self):
        return self.images / self.seconds

    def line(self):
        published = "-" if self.published_top1 is None else f"{self.published_top1:.3f}%"
        return (
            f"{self.model} ({self.weights}) on {self.images} images of {self.data}: "
            f"top-1 {self.top1:.3f}% (published {published}), top-5 {self.top5:.3f}%, "
            f"{self.images_per_second:.1f} images/s"
        )


def validate(
    model_name,
    weights_tag,
    data,
    labels=None,
    data_dir=None,
    batch_size=32,
    limit=None,
    json_path=None,
    progress=True,
):
    """Measure `model_name` with `weights_tag` (a tag or a weights file) on `data`: a folder
    of class folders, a flat folder with `labels` ("<image> <WNID or index>" lines), or
    "imagenet2012" (tensorflow-datasets, in `data_dir`). `limit`: the first images only.
    With `json_path`, the result is also written there (only once it is complete)."""
    name = applications.entry(model_name).name
    check_positive("batch_size", batch_size)
    if limit is not None:
        check_positive("limit", limit)
    preprocessing, published = weights.IMAGENET, None
    if weights_tag in applications.tags(name) - {applications.BASE_TAG}:
        info = applications.get_weights(name, weights_tag)
        preprocessing, published = info.preprocessing, info.top1
    classes = preprocessing.get("num_classes", 1000)
    if classes != 1000:
        raise ValueError(
            f"{weights_tag!r} classifies {classes} classes; ImageNet validation has 1000. "
            f"Received: weights={weights_tag!r}"
        )
    examples = imagenet.examples(data, labels, data_dir)
    count = min(examples.count, limit or examples.count)
    model = applications.get_model(name, weights=weights_tag)
    preprocess = applications.family_module(name).preprocess_input

    def load(batch):
        images = []
        for source, _, label_name in batch:
            try:
                images.append(imagenet_utils.load_image(source, **preprocessing))
            except ValueError as error:
                raise ValueError(f"Could not read {label_name}: {error}") from None
        return preprocess(np.stack(images)), np.array([label for _, label, _ in batch])

    bar = keras.utils.Progbar(
        count, unit_name="image", verbose=int(progress), stateful_metrics=["top-1", "images/s"]
    )
    correct1 = correct5 = seen = 0
    start = time.perf_counter()
    # The next batch is read and resized (PIL, which releases the GIL) while this one runs.
    with concurrent.futures.ThreadPoolExecutor(1) as reader:
        batches = _batches(examples.iterate(), batch_size, count)
        pending = reader.submit(load, next(batches))
        while pending is not None:
            images, targets = pending.result()
            following = next(batches, None)
            pending = None if following is None else reader.submit(load, following)
            top5 = np.argsort(np.asarray(model.predict_on_batch(images)), axis=1)[:, ::-1][:, :5]
            correct1 += int((top5[:, 0] == targets).sum())
            correct5 += int((top5 == targets[:, None]).any(axis=1).sum())
            seen += len(targets)
            rate = seen / (time.perf_counter() - start)
            bar.update(seen, [("top-1", 100 * correct1 / seen), ("images/s", rate)])
    result = Result(
        name,
        str(weights_tag),
        examples.description,
        seen,
        100 * correct1 / seen,
        100 * correct5 / seen,
        published,
        time.perf_counter() - start,
    )
    if json_path:
        with files.atomic_path(json_path) as partial, open(partial, "w") as file:
            record = {**dataclasses.asdict(result), "images_per_second": result.images_per_second}
            json.dump(record, file, indent=2)
    return result


def _batches(iterator, batch_size, count):
    batch = []
    for index, example in enumerate(iterator):
        if index == count:
            break
        batch.append(example)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
