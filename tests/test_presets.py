"""keras-hub presets (`se_keras.presets`): each head type saves and loads through keras-hub's
own loaders; a preset, in a fresh process and from a Hugging Face Hub stand-in, gives the
top-5 that `se-keras predict` prints, with the weights tag's own view."""

import json
import os
import subprocess
import sys

import keras
import keras_hub
import numpy as np
import pytest
from PIL import Image

from se_keras import applications, presets
from se_keras.applications import imagenet_utils
from se_keras.benchmark.realistic import randomize_batch_norm, realistic_model
from tests.fake_hub import FakeHub
from tests.imagenet_like import TAG, VIEW, cli_top5, served_tag

FRESH = """
import json, sys
import numpy as np
from PIL import Image
import se_keras  # registers the keras-hub classes once keras_hub is imported
import keras_hub
from se_keras.applications import imagenet_utils

results = {}
for source in sys.argv[2:]:
    classifier = keras_hub.models.ImageClassifier.from_preset(source)
    top = []
    for path in json.loads(sys.argv[1]):
        raw = np.asarray(Image.open(path).convert("RGB"))
        top.append(imagenet_utils.decode_predictions(classifier.predict(raw[None], verbose=0))[0])
    results[source] = {"class": type(classifier).__name__, "top": top}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """The ImageNet-like tag's model, saved as a preset."""
    root = tmp_path_factory.mktemp("presets")
    with served_tag(root) as images:
        model = applications.get_model("se_resnet18", weights=TAG)
        yield model, presets.save_preset(model, root / "preset"), images[:3]


def test_preset_in_a_fresh_process_and_from_the_hub_predicts_as_the_cli(preset, tmp_path, capsys):
    _, path, images = preset
    files = sorted(os.listdir(path))
    assert files == [
        "config.json",
        "image_converter.json",
        "metadata.json",
        "model.weights.h5",
        "preprocessor.json",
        "task.json",
        "task.weights.h5",
    ]
    converter = json.loads(open(os.path.join(path, "image_converter.json")).read())["config"]
    assert converter["image_size"] == [224, 224] and converter["crop_pct"] == 0.95
    assert converter["interpolation"] == "bicubic" and converter["std"] == list(VIEW["std"])

    hub = FakeHub()
    for name in files:
        hub.put("test/se-resnet18-preset", name, open(os.path.join(path, name), "rb").read())
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    env.pop("HF_HUB_OFFLINE", None)
    hf = "hf://test/se-resnet18-preset"
    command = [sys.executable, "-c", FRESH, json.dumps(images), path, hf]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    hub.close()
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])

    expected = cli_top5(images, capsys)
    assert len({row[0][0] for row in expected}) == len(images)  # each image its own classes
    for source in (path, hf):
        assert results[source]["class"] == "SEImageClassifier"
        for ours, theirs in zip(results[source]["top"], expected):
            # The same five classes in the same order, with scores as close as Keras'
            # resizing is to PIL's.
            assert [wnid for wnid, _, _ in ours] == [wnid for wnid, _ in theirs]
            difference = max(abs(p - q) for (_, _, p), (_, q) in zip(ours, theirs))
            print(f"{source}: max |score difference| against se-keras predict {difference:.4f}")
            assert difference < 0.02
    assert results[path] == results[hf]


def test_converter_sees_the_window_the_cli_sees(preset):
    model, path, images = preset
    converter = keras_hub.models.ImageClassifier.from_preset(path).preprocessor.image_converter
    for image in images:
        raw = np.asarray(Image.open(image).convert("RGB"), dtype="float32")
        ours = np.asarray(converter(raw))
        theirs = imagenet_utils.preprocess_input(imagenet_utils.load_image(image, **VIEW))
        # Keras' antialiased bicubic resize against PIL's, in units of the ImageNet std.
        assert np.abs(ours - theirs).mean() < 0.03 and np.abs(ours - theirs).max() < 0.15


# One model of each head and normalisation: keras' pooling + dense (ResNet and timm, as the
# Inceptions and ShuffleNets), MobileNet's 1x1 convolution, MobileNetV2's, VGG's fully
# connected layers ("caffe": BGR), and the "tf" normalisation (MobileNets, as the Inceptions).
# Every model: with the exhaustive tier.
HEADS = ["se_resnet18", "timm_seresnet18", "se_mobilenet", "se_mobilenet_v2", "se_vgg16"]


def _round_trip(name, tmp_path):
    entry = applications.entry(name)
    model = realistic_model(name, size=max(entry.min_size, 32), classes=7, seed=1)
    path = presets.save_preset(model, tmp_path / name)
    loaded = keras_hub.models.ImageClassifier.from_preset(path)
    x = np.random.default_rng(2).uniform(-2, 2, (2, *model.input_shape[1:])).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x))
    difference = np.abs(keras.ops.convert_to_numpy(loaded(x)) - expected).max()
    assert difference <= 1e-5 * np.abs(expected).max()
    backbone = keras_hub.models.Backbone.from_preset(path)
    assert isinstance(backbone, presets.SEBackbone) and backbone.model_name == entry.name
    # Raw images are resized to the model's own input side.
    assert loaded.preprocessor.image_converter.image_size == model.input_shape[1:3]
    return model, loaded


@pytest.mark.parametrize("name", HEADS)
def test_each_head_saves_and_loads_with_its_normalisation(name, tmp_path):
    model, loaded = _round_trip(name, tmp_path)
    # The converter's normalisation is the family's preprocess_input, on the crop window.
    side = loaded.preprocessor.image_converter.image_size[0]
    raw = np.random.default_rng(4).uniform(0, 255, (2, side, side, 3)).astype("float32")
    converter = presets.SEImageConverter(**{**presets.image_view(name, size=side), "crop_pct": 1})
    expected = applications.family_module(name).preprocess_input(raw.copy())
    np.testing.assert_allclose(np.asarray(converter(raw)), expected, atol=2e-4, rtol=1e-5)


@pytest.mark.exhaustive
@pytest.mark.parametrize("name", applications.list_models())
def test_every_model_saves_and_loads(name, tmp_path):
    _round_trip(name, tmp_path)


def test_backbone_preset(tmp_path):
    model = applications.get_model("se_resnet18", weights=None, include_top=False)
    randomize_batch_norm(model, seed=5)
    path = presets.save_preset(model, tmp_path / "backbone")
    assert "task.json" not in os.listdir(path)
    backbone = keras_hub.models.Backbone.from_preset(path)
    x = np.random.default_rng(0).uniform(-2, 2, (1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(backbone(x), model(x), rtol=1e-5, atol=1e-5)
    pooled = applications.get_model("se_resnet18", weights=None, include_top=False, pooling="avg")
    with pytest.raises(ValueError, match="pooling=None"):
        presets.save_preset(pooled, tmp_path / "pooled")
    assert not (tmp_path / "pooled").exists()


def test_bad_input_writes_nothing(tmp_path, monkeypatch):
    plain = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)], name="plain")
    with pytest.raises(ValueError, match="model='plain'"):
        presets.save_preset(plain, tmp_path / "plain")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep").write_text("keep me")
    model = applications.get_model("se_resnet18", weights=None, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="exists; pass overwrite=True"):
        presets.save_preset(model, existing)
    assert os.listdir(existing) == ["keep"]

    # An option a JSON config cannot hold (a function object) is refused, before any file.
    odd = applications.get_model(
        "se_resnet18",
        weights=None,
        input_shape=(32, 32, 3),
        se_options={"kernel_initializer": keras.initializers.HeNormal()},
    )
    with pytest.raises(ValueError, match="not all JSON values"):
        presets.save_preset(odd, tmp_path / "odd")
    assert not (tmp_path / "odd").exists()

    def fail(self, preset_dir, **_):
        os.makedirs(preset_dir, exist_ok=True)
        open(os.path.join(preset_dir, "config.json"), "w").close()
        raise OSError("disk full")

    os.makedirs(tmp_path / "failed")
    monkeypatch.setattr(presets.SEImageClassifier, "save_to_preset", fail)
    with pytest.raises(OSError, match="disk full"):
        presets.save_preset(model, tmp_path / "failed" / "preset")
    assert os.listdir(tmp_path / "failed") == []  # no partial preset, no staging folder


def test_num_classes_starts_a_fresh_head_on_the_preset_backbone(preset):
    model, path, images = preset
    classifier = keras_hub.models.ImageClassifier.from_preset(path, num_classes=3)
    assert classifier.output_shape == (None, 3)
    np.testing.assert_array_equal(
        classifier.backbone.get_layer("conv5_block2_se").get_weights()[0],
        model.get_layer("conv5_block2_se").get_weights()[0],
    )
    raw = np.stack(
        [np.asarray(Image.open(image).convert("RGB").resize((320, 240))) for image in images]
    )
    classifier.compile()
    history = classifier.fit(raw, np.array([0, 1, 2]), epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])


REGISTRATION = """
import sys
import keras
import se_keras
assert "keras_hub" not in sys.modules and "se_keras.presets" not in sys.modules
assert keras.saving.get_registered_object("se_keras>SEBackbone") is None
import keras_hub
assert keras.saving.get_registered_object("se_keras>SEBackbone") is se_keras.presets.SEBackbone
print("registered")
"""


def test_import_se_keras_registers_the_classes_once_keras_hub_is_imported():
    done = subprocess.run(
        [sys.executable, "-c", REGISTRATION], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "registered", done.stderr[-2000:]
