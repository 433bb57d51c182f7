"""README.md's Tour runs as written (issue 18): its Python snippets, in a fresh process.

One adaptation: the released ImageNet files cannot be downloaded here (no network), so the
tag `"imagenet"` of the two models the Tour loads is registered again, before the Tour runs,
for the authors' architectures (pretrainedmodels' `senet.py`) with random weights, saved as
`.pth` and served over 127.0.0.1 as tests/test_weights.py does. Everything after that runs
unchanged: download, sha256 check, conversion, cache. `cat.jpg` is a random image.
"""

import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from se_keras import applications
from tests.helpers import Server

README = pathlib.Path(__file__).parents[1] / "README.md"
# Registry name -> the reference builder whose checkpoint layout it converts from.
LOADED = {"se_resnet50": "se_resnet50", "se_resnext50": "se_resnext50_32x4d"}

PRELUDE = """
import json, sys
from se_keras import applications

for model, (origin, sha256) in json.loads(sys.argv[1]).items():
    applications.register_weights(model, "imagenet", origin=origin, sha256=sha256)
"""
# What the Tour made, printed for the test to check.
EPILOGUE = """
print("TOUR", json.dumps({
    "backbone": list(backbone.output.shape),
    "layer": list(y.shape),
    "models": se_keras.applications.list_models(),
}))
"""


def tour_snippets():
    """The ```python blocks between the Tour heading and the next heading."""
    text = README.read_text()
    tour = text.split("\n## Tour\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", tour, flags=re.DOTALL)


def test_the_tour_has_python_snippets():
    snippets = tour_snippets()
    assert snippets and all("se_keras" in snippet for snippet in snippets)


@pytest.mark.slow
def test_the_tour_runs_in_a_fresh_process(senet, tmp_path):
    import torch
    from PIL import Image

    served = tmp_path / "served"
    served.mkdir()
    for ours, reference in LOADED.items():
        torch.save(getattr(senet, reference)(pretrained=None).state_dict(), served / f"{ours}.pth")
    server = Server(served)
    registrations = {
        ours: (
            f"{server.url}/{ours}.pth",
            hashlib.sha256((served / f"{ours}.pth").read_bytes()).hexdigest(),
        )
        for ours in LOADED
    }
    pixels = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "cat.jpg")
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras_home")}
    env.pop("SE_KERAS_WEIGHTS_URL", None)  # the origins above, not a mirror
    code = "\n".join([PRELUDE, *tour_snippets(), EPILOGUE])
    try:
        result = subprocess.run(
            [sys.executable, "-c", code, json.dumps(registrations)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    made = json.loads(next(line for line in lines if line.startswith("TOUR ")).split(" ", 1)[1])
    assert made == {
        "backbone": [None, 2048],
        "layer": [None, 14, 14, 96],
        "models": applications.list_models(),
    }
    # decode_predictions' top five (WNID, label, score) for the one image.
    (predictions,) = [line for line in lines if line.startswith("[[(")]
    assert len(re.findall(r"'n\d{8}'", predictions)) == 5
    cached = sorted(os.listdir(tmp_path / "keras_home" / "models" / "se_keras"))
    assert [name for name in cached if name.endswith(".pth")] == sorted(
        f"{ours}.pth" for ours in LOADED
    )
