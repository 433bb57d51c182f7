"""se_keras.analysis and `se-keras excitations`: recorded gates against NumPy recomputed from
each SE layer's own weights, on a model trained on the bundled digits, every family, JAX."""

import csv
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from se_keras import analysis, applications, cli, data
from se_keras.layers import SqueezeExcite
from tests.numpy_se import numpy_gate, small_se_network

NORMALISE = data.normalizer("torch")  # se_resnet18's, the MODEL named to the CLI below


def _digits(split, batch_size=64, training=False):
    return data.make_dataset(
        "digits", split, 32, batch_size, NORMALISE, training=training, seed=0, deterministic=True
    )


def _test_arrays():
    batches = list(_digits("test"))
    return (
        np.concatenate([np.asarray(x) for x, _ in batches]),
        np.concatenate([np.asarray(y) for _, y in batches]),
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small SE network trained briefly on the digits, with the three squeeze modes, saved
    as `se-keras train` saves its models."""
    keras.utils.set_random_seed(0)
    model = small_se_network(keras)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(_digits("train", 32, training=True), epochs=3, verbose=0)
    images, labels = _test_arrays()
    accuracy = model.evaluate(images, labels, verbose=0)[1]
    assert accuracy > 0.3, accuracy  # it has learnt (chance: 0.1); the gates are not random
    path = tmp_path_factory.mktemp("trained") / "model.keras"
    model.save(path)
    return model, str(path), images, labels


def _se_inputs(model, images):
    """{SE block: its input}, from the network itself (the gates are recomputed in NumPy)."""
    blocks = [layer for layer in model.layers if isinstance(layer, SqueezeExcite)]
    features = keras.Model(model.input, [layer.input for layer in blocks])(images)
    return {b.name: keras.ops.convert_to_numpy(f) for b, f in zip(blocks, features)}, blocks


def test_recorded_gates_equal_numpy_from_the_layer_weights(trained):
    model, _, images, _ = trained
    x = images[:12]
    recorded = analysis.excitations(model, x)
    inputs, blocks = _se_inputs(model, x)
    assert list(recorded) == [b.name for b in blocks] == ["conv1_se", "conv2_se", "conv3_se"]
    for block in blocks:
        expected = numpy_gate(inputs[block.name], block)
        assert recorded[block.name].shape == (12, block.channels)
        assert expected.std() > 0.005  # trained gates that differ between inputs and channels
        assert np.abs(recorded[block.name] - expected).max() <= 1e-6


def test_class_statistics_and_csv(trained, tmp_path):
    model, _, images, labels = trained
    stats = analysis.record(model, analysis.batches_of(images, labels, 50), 10, progress=False)
    inputs, blocks = _se_inputs(model, images)
    assert stats.blocks == tuple(b.name for b in blocks) and stats.examples == len(images)
    np.testing.assert_array_equal(stats.counts, np.bincount(labels, minlength=10))
    for block in blocks:
        gates = numpy_gate(inputs[block.name], block)
        expected = np.stack([gates[labels == c].mean(axis=0) for c in range(10)])
        assert np.abs(stats.class_means(block.name) - expected).max() <= 1e-6
        spread = expected.std(axis=0).mean()
        assert stats.class_spread(block.name) == pytest.approx(spread, rel=1e-6)
    csv_path, depth_path = analysis.write_csv(stats, str(tmp_path), [2, 7])
    with open(csv_path) as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["block", "depth", "channel", "all", "class_2", "class_7"]
    assert [r["block"] for r in rows] == [b.name for b in blocks for _ in range(b.channels)]
    last = [float(r["class_7"]) for r in rows if r["block"] == "conv3_se"]
    np.testing.assert_allclose(last, stats.class_means("conv3_se")[7], rtol=1e-5)
    with open(depth_path) as file:
        assert [r["block"] for r in csv.DictReader(file)] == list(stats.blocks)


def test_cli_on_a_trained_model_file(trained, tmp_path, capsys):
    model, path, images, labels = trained
    out = tmp_path / "out"
    assert (
        cli.main(
            [
                "excitations",
                "se_resnet18",
                "--weights",
                path,
                "--classes",
                "1",
                "7",
                "--batch-size",
                "100",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "4/4" in printed  # the progress bar over the 360 test images
    assert "recorded 3 SE blocks over 360 test images of digits" in printed
    for name in ("class_excitations.png", "spread_by_depth.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "excitations.csv") as file:
        rows = list(csv.DictReader(file))
    assert {r["block"] for r in rows} == {"conv1_se", "conv2_se", "conv3_se"}
    inputs, blocks = _se_inputs(model, images)
    for block in blocks:
        expected = numpy_gate(inputs[block.name], block)[labels == 1].mean(axis=0)
        column = [float(r["class_1"]) for r in rows if r["block"] == block.name]
        np.testing.assert_allclose(column, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["se_resnet9"], "'se_resnet9'"),
        (["se_resnet18", "--classes", "3", "10"], "Received: classes=[3, 10]"),
        (["se_resnet18", "--weights", "missing/model.keras"], "No such model file"),
        (["se_resnet18", "--weights", "missing.weights.h5"], "weights='missing.weights.h5'"),
        (["se_resnet18", "--blocks", "conv9_block1_se"], "Received: blocks=['conv9_block1_se']"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(arguments, message, tmp_path, capsys):
    assert cli.main(["excitations", *arguments, "--output-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("se-keras excitations: error: ")
    assert message in lines[0] and not os.listdir(tmp_path)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("se_resnet18", dict(se_position="3x3")),
        ("se_bn_inception", {}),
        ("se_mobilenet_v2", dict(alpha=0.35)),
        ("se_shufflenet_v2", dict(alpha=0.5)),
        ("se_vgg16", dict(batch_norm=True, se_options={"pooling": None})),
    ],
)
def test_every_family(name, kwargs):
    model = applications.get_model(
        name, weights=None, include_top=False, input_shape=(32, 32, 3), **kwargs
    )
    x = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype("float32")
    recorded = analysis.excitations(model, x)
    blocks = [layer for layer in model.layers if isinstance(layer, SqueezeExcite)]
    assert list(recorded) == [b.name for b in blocks] and blocks
    inputs, _ = _se_inputs(model, x)
    for block in (blocks[0], blocks[-1]):
        assert np.abs(recorded[block.name] - numpy_gate(inputs[block.name], block)).max() <= 1e-6


@pytest.mark.parametrize("pooling", ["avg", None])
def test_channels_first(pooling):
    inputs = keras.Input((16, 3, 5))
    x = SqueezeExcite(ratio=4, pooling=pooling, data_format="channels_first", name="a_se")(inputs)
    x = SqueezeExcite(ratio=2, pooling="max", data_format="channels_first", name="b_se")(x)
    model = keras.Model(inputs, x)
    for layer in model.layers[1:]:
        for weight in layer.weights:
            weight.assign(np.random.default_rng(3).normal(0, 0.5, weight.shape))
    x = np.random.default_rng(0).normal(size=(2, 16, 3, 5)).astype("float32")
    recorded = analysis.excitations(model, x)
    inputs, blocks = _se_inputs(model, x)
    for block in blocks:
        assert np.abs(recorded[block.name] - numpy_gate(inputs[block.name], block)).max() <= 1e-6


_JAX_SCRIPT = textwrap.dedent("""
    import numpy as np, keras
    from se_keras import analysis
    from se_keras.layers import SqueezeExcite
    from tests.numpy_se import numpy_gate, small_se_network

    assert keras.backend.backend() == "jax"
    model = small_se_network(keras)
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    stats = analysis.record(model, analysis.batches_of(x, np.array([0, 1, 1, 2]), 3), 3,
                            progress=False)
    recorded = analysis.excitations(model, x)
    blocks = [l for l in model.layers if isinstance(l, SqueezeExcite)]
    inputs = keras.Model(model.inputs, [b.input for b in blocks]).predict(x, verbose=0)
    worst = max(np.abs(recorded[b.name] - numpy_gate(u, b)).max() for b, u in zip(blocks, inputs))
    mean = stats.class_means(blocks[-1].name)[1]
    expected = numpy_gate(inputs[-1], blocks[-1])[1:3].mean(axis=0)
    print("blocks", len(stats.blocks), "worst", worst, "class", np.abs(mean - expected).max())
""")


def test_jax_backend():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": root, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", _JAX_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    _, blocks, _, worst, _, class_diff = result.stdout.split()
    assert int(blocks) == 3 and float(worst) <= 1e-6 and float(class_diff) <= 1e-6
