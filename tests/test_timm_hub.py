"""Weights from the Hugging Face Hub, against a fake Hub on 127.0.0.1 (`tests.fake_hub`):
huggingface_hub's cache and settings, the digest check, its record, pinning, offline use.

huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE when it is imported, so each
case runs in a fresh process (on Keras' NumPy backend: no TensorFlow start-up).
"""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.fake_hub import FakeHub
from tests.timm_reference import load_timm

FETCH = """
import json, sys
import numpy as np
import se_keras
from se_keras.weights import download, hub, weights_info

results = {}
for tag, origin, pin in json.loads(sys.argv[1]):
    try:
        path, digest = hub.fetch(weights_info("timm_seresnet18", tag, origin, pin))
        results[tag] = ["ok", path, digest]
    except download.DownloadError as error:
        results[tag] = ["refused", str(error)]
if len(sys.argv) > 2:  # the whole path: a tag registered on a Hub file, through the builder
    se_keras.applications.register_weights("seresnet18", "tiny", "hf://test/seresnet18", None)
    model = se_keras.applications.TimmSEResNet18(weights="tiny")
    np.save(sys.argv[2], model.get_layer("conv2_block1_se").get_weights()[0])
    # A Hub id, headless: its config.json names the architecture.
    model = se_keras.applications.TimmSEResNet18(weights="hf://test/seresnet18", include_top=False)
    same = model.get_layer("conv2_block1_se").get_weights()[0]
    results["hub id"] = bool((same == np.load(sys.argv[2])).all())
    try:
        se_keras.applications.TimmSEResNet18(weights="hf://test/resnet50")
    except ValueError as error:
        results["other architecture"] = str(error)
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def hub():
    server = FakeHub()
    yield server
    server.close()


@pytest.fixture(scope="module")
def checkpoint():
    """A timm seresnet18 state dict as the bytes of a .safetensors file."""
    from safetensors.torch import save

    model = load_timm().create_model("seresnet18")
    return save({k: v.contiguous() for k, v in model.state_dict().items()})


def _fetch(hub, home, cases, extra=(), offline=False):
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(home / "hf"),
        "KERAS_HOME": str(home / "keras"),
        "KERAS_BACKEND": "numpy",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    env.pop("HF_HUB_OFFLINE", None)
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    command = [sys.executable, "-c", FETCH, json.dumps(cases), *map(str, extra)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _blobs(home, repo):
    return sorted(p.name for p in (home / "hf").rglob(f"models--{repo}/blobs/*"))


def test_hub_weights(hub, checkpoint, tmp_path):
    digest = hashlib.sha256(checkpoint).hexdigest()
    hub.put("test/seresnet18", "model.safetensors", checkpoint)
    hub.put("test/corrupt", "model.safetensors", checkpoint[:-10], digest=digest)
    hub.put("test/seresnet18", "config.json", b'{"architecture": "seresnet18"}')
    hub.put("test/resnet50", "config.json", b'{"architecture": "resnet50"}')
    cases = [
        ["plain", "hf://test/seresnet18", None],
        ["pinned", "hf://test/seresnet18/model.safetensors", digest[:12]],
        ["wrong-pin", "hf://test/seresnet18", "0123456789abcdef"],
        ["corrupt", "hf://test/corrupt", None],
        ["missing", "hf://test/absent", None],
    ]
    first = _fetch(hub, tmp_path, cases, extra=[tmp_path / "se.npy"])
    assert first["plain"][0] == first["pinned"][0] == "ok"
    assert first["plain"][2] == digest and first["plain"][1].startswith(str(tmp_path / "hf"))
    assert "pinned 0123456789abcdef" in first["wrong-pin"][1]
    assert "corrupt or truncated" in first["corrupt"][1]
    assert "test/absent" in first["missing"][1]
    assert digest in _blobs(tmp_path, "test--seresnet18")
    assert _blobs(tmp_path, "test--corrupt") == []  # the corrupt file left nothing behind
    # The builder's tag loaded that file: timm's SE reduce weights, (C', C, 1, 1) -> (C, C').
    from safetensors.numpy import load

    served = load(checkpoint)["layer1.0.se.fc1.weight"]
    np.testing.assert_array_equal(np.load(tmp_path / "se.npy"), served[:, :, 0, 0].T)
    assert hub.downloads.count("test/seresnet18/model.safetensors") == 1
    assert first["hub id"] is True
    assert "holds a 'resnet50' checkpoint" in first["other architecture"]
    assert "seresnext50_32x4d" in first["other architecture"]  # the supported ones

    # Offline, the cached file serves without a request; once the Hub holds another file
    # under the same name, it is refused.
    downloads = len(hub.downloads)
    again = _fetch(hub, tmp_path, cases[:1], offline=True)
    assert again["plain"][2] == digest and len(hub.downloads) == downloads
    hub.put("test/seresnet18", "model.safetensors", checkpoint + b" ")
    changed = _fetch(hub, tmp_path, cases[:1])
    assert changed["plain"][0] == "refused" and f"{digest} was verified" in changed["plain"][1]


def test_hub_origins_are_checked():
    from se_keras.weights import weights_info

    with pytest.raises(ValueError, match=r"hf://owner/name\[/file\]. Received: 'hf://timm'"):
        weights_info("timm_seresnet18", "t", "hf://timm", None)
    with pytest.raises(ValueError, match=r"Received: sha256=None"):
        weights_info("timm_seresnet18", "t", "https://example.org/a.pth", None)
