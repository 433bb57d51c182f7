"""An ImageNet-like weights tag for the tests: SE-ResNet-18 whose predictions follow the
image, served on 127.0.0.1 and registered with a view of its own, and pictures to show it."""

import contextlib
import hashlib
import os
import re

import keras
import numpy as np
from PIL import Image

from se_keras import applications, cli, weights
from se_keras.applications import _registry, imagenet_utils
from tests.helpers import Server

TAG = "imagenet_like_test"
TOP1 = 71.5  # the "published" top-1 registered with it
# timm-like: bicubic, crop 0.95, so that the tag's view is shown to be the one used.
VIEW = {**weights.IMAGENET, "resize": 235, "crop_pct": 0.95, "interpolation": "bicubic"}
SIZES = [(300, 400), (375, 500), (480, 360), (333, 333), (256, 300), (400, 300)]


def photo(path, height, width, seed):
    """A smooth synthetic picture (waves of random frequencies): resizing it is well defined,
    unlike noise, whose every pixel changes with a sub-pixel shift."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / min(height, width)
    waves = [np.sin(rng.uniform(2, 8) * x + rng.uniform(2, 8) * y + c) for c in range(3)]
    pixels = np.clip(np.stack(waves, -1) * 100 + 128, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


def _fit_classifier(model, paths):
    """A classifier that gives each picture in `paths` five classes of its own, logits 10, 8,
    6, 4 and 2 over a background of 0 (a ridge regression on the pooled features): random
    weights alone give nearly the same top-5, with near ties, whatever the image."""
    features = keras.Model(model.input, model.get_layer("avg_pool").output)
    x = np.stack([imagenet_utils.load_image(path, **VIEW) for path in paths])
    pooled = np.asarray(features(imagenet_utils.preprocess_input(x)), dtype="float64")
    centred = pooled - pooled.mean(0)
    targets = np.zeros((len(paths), 1000))
    classes = np.random.default_rng(0).permutation(1000)[: 5 * len(paths)].reshape(-1, 5)
    for row, chosen in enumerate(classes):
        targets[row, chosen] = [10, 8, 6, 4, 2]
    gram = centred.T @ centred
    ridge = 1e-3 * np.trace(gram) / len(gram)
    kernel = np.linalg.solve(gram + ridge * np.eye(len(gram)), centred.T @ targets)
    bias = targets.mean(0) - pooled.mean(0) @ kernel
    model.get_layer("predictions").set_weights([kernel, bias])


@contextlib.contextmanager
def served_tag(root):
    """Registers TAG for se_resnet18 (served from `root`, cached under `root`) for the block;
    yields the pictures, `photo(...)`s of SIZES in `root`."""
    images = [photo(root / f"photo{i}.png", h, w, i) for i, (h, w) in enumerate(SIZES)]
    # Keras' initial weights: random BatchNorm statistics would make the network chaotic,
    # its features changed by differences in the input far below a trained network's notice.
    source = applications.get_model("se_resnet18", weights=None)
    _fit_classifier(source, images)
    (root / "files").mkdir()
    source.save_weights(root / "files" / "se18.weights.h5")
    digest = hashlib.sha256((root / "files" / "se18.weights.h5").read_bytes()).hexdigest()
    server = Server(root / "files")
    keras_home = os.environ.get("KERAS_HOME")
    os.environ["KERAS_HOME"] = str(root / "keras")
    try:
        applications.register_weights(
            "se_resnet18",
            TAG,
            f"{server.url}/se18.weights.h5",
            digest,
            preprocessing=VIEW,
            top1=TOP1,
        )
        yield images
    finally:
        _registry._WEIGHTS["se_resnet18"].pop(TAG, None)
        server.stop()
        if keras_home is None:
            os.environ.pop("KERAS_HOME")
        else:
            os.environ["KERAS_HOME"] = keras_home


def cli_top5(images, capsys):
    """`se-keras predict se_resnet18 IMAGES --weights TAG`: per image, [(wnid, score)] x 5."""
    assert cli.main(["predict", "se_resnet18", *images, "--weights", TAG]) == 0
    rows = re.findall(r"(n\d{8})\s+([\d.]+)$", capsys.readouterr().out, re.MULTILINE)
    rows = [(wnid, float(score)) for wnid, score in rows]
    return [rows[i * 5 : i * 5 + 5] for i in range(len(images))]
