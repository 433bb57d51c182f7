"""`weights=tag`: download over 127.0.0.1, hash check, conversion cache, clean failures."""

import hashlib
import os

import numpy as np
import pytest
import torch

import se_keras
from se_keras import applications, weights
from se_keras.applications import _registry, imagenet_utils
from se_keras.weights import download
from tests.helpers import Server, randomize, reference_outputs


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """A private Keras cache and registry for one test."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv(download.MIRROR_VARIABLE, raising=False)
    monkeypatch.setattr(_registry, "_WEIGHTS", {k: dict(v) for k, v in _registry._WEIGHTS.items()})
    return tmp_path


@pytest.fixture
def served(isolated, senet):
    """The randomised reference SE-ResNet-50 as a .pth behind a loopback server."""
    files = isolated / "files"
    files.mkdir()
    ref = randomize(senet.se_resnet50(pretrained=None), seed=11)
    torch.save(ref.state_dict(), files / "se_resnet50-test.pth")
    server = Server(files)
    yield ref, server, hashlib.sha256((files / "se_resnet50-test.pth").read_bytes()).hexdigest()
    server.stop()


def _cache_files():
    return sorted(os.listdir(download.cache_dir()))


def test_registered_weights_download_convert_and_cache(served):
    ref, server, sha = served
    applications.register_weights(
        "se_resnet50", "test", origin=f"{server.url}/se_resnet50-test.pth", sha256=sha
    )
    images = np.random.default_rng(0).standard_normal((2, 224, 224, 3), dtype=np.float32)
    expected = reference_outputs(ref, images)

    model = se_keras.applications.SEResNet50(weights="test", classifier_activation=None)
    assert (
        np.abs(model.predict(images, verbose=0) - expected).max() <= 1e-4 * np.abs(expected).max()
    )
    npz = "se_resnet50-test-" + sha[:8] + ".npz"
    pth = "se_resnet50-test.pth"
    assert _cache_files() == [npz, npz + ".sha256", pth, pth + ".sha256"]

    server.stop()  # the second load needs no network, and no checkpoint either
    os.remove(os.path.join(download.cache_dir(), "se_resnet50-test.pth"))
    again = se_keras.applications.SEResNet50(weights="test", classifier_activation=None)
    np.testing.assert_array_equal(
        again.predict(images, verbose=0), model.predict(images, verbose=0)
    )
    headless = se_keras.applications.SEResNet50(weights="test", include_top=False, pooling="avg")
    np.testing.assert_allclose(
        headless.get_layer("conv5_block3_se").reduce_kernel.numpy(),
        ref.layer4[2].se_module.fc1.weight.detach().numpy()[:, :, 0, 0].T,
    )


def test_mirror_variable_replaces_the_origin(served, monkeypatch):
    _, server, sha = served
    applications.register_weights(
        "se_resnet50",
        "test",
        origin="http://127.0.0.1:9/nowhere/se_resnet50-test.pth",
        sha256=sha[:8],
    )
    monkeypatch.setenv(download.MIRROR_VARIABLE, server.url)
    model = se_keras.applications.SEResNet50(weights="test", include_top=False)
    assert "se_resnet50-test.pth" in _cache_files() and model.name == "se_resnet50"


def test_hash_mismatch_fails_and_caches_nothing(served):
    _, server, sha = served
    wrong = "0" * 64
    applications.register_weights(
        "se_resnet50", "test", origin=f"{server.url}/se_resnet50-test.pth", sha256=wrong
    )
    with pytest.raises(download.DownloadError, match=f"has sha256 {sha}, expected {wrong}"):
        se_keras.applications.SEResNet50(weights="test")
    assert _cache_files() == []


def test_truncated_download_fails_and_caches_nothing(served):
    _, server, sha = served
    applications.register_weights(
        "se_resnet50", "test", origin=f"{server.url}/truncated/se_resnet50-test.pth", sha256=sha
    )
    with pytest.raises(download.DownloadError, match="incomplete download|sha256"):
        se_keras.applications.SEResNet50(weights="test")
    assert _cache_files() == []


def test_404_names_url_and_mirror_variable(served, capsys):
    _, server, sha = served
    url = f"{server.url}/missing.pth"
    applications.register_weights("se_resnet50", "test", origin=url, sha256=sha)
    with pytest.raises(download.DownloadError, match="404") as error:
        se_keras.applications.SEResNet50(weights="test")
    assert url in str(error.value) and download.MIRROR_VARIABLE in str(error.value)
    assert _cache_files() == []
    # Nothing was downloaded, so nothing says so: the error is the only line.
    assert "Downloading" not in capsys.readouterr().out


def test_builtin_registry_matches_the_released_files():
    for name, file_name, top1 in [
        ("se_resnet50", "se_resnet50-ce0d4300.pth", 77.64),
        ("se_resnext101", "se_resnext101_32x4d-3b2fe3d8.pth", 80.24),
        ("senet154", "senet154-c7b49a05.pth", 81.30),
    ]:
        info = applications.get_weights(name, "imagenet")
        assert (info.file_name, info.sha256, info.top1) == (file_name, file_name[-12:-4], top1)
        assert info.preprocessing["mean"] == (0.485, 0.456, 0.406)
    authors = [entry.name for entry in applications.se_resnet.MODELS]
    assert [n for n in applications.list_models(pretrained=True) if n in authors] == authors
    for name in authors:
        assert "imagenet" in applications.tags(name)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(model_name="resnet9"), r"Received: model_name='resnet9'"),
        (dict(sha256="xyz"), r"Received: sha256='xyz'"),
        (dict(origin="se_resnet50.pth"), r"Received: origin='se_resnet50.pth'"),
        (dict(tag=""), r"Received: tag=''"),
        (dict(file_name="../../x.pth"), r"plain file name.*Received: file_name='../../x.pth'"),
        (dict(file_name=".."), r"Received: file_name='..'"),
        (dict(origin="http://h/"), r"plain file name.*Received: origin='http://h/'"),
        (dict(origin=5), r"Received: origin=5"),
        (dict(file_name=5), r"Received: file_name=5"),
    ],
)
def test_register_rejects_bad_arguments(isolated, kwargs, message):
    arguments = dict(
        model_name="se_resnet50", tag="t", origin="http://127.0.0.1/x.pth", sha256="ab" * 4
    )
    with pytest.raises(ValueError, match=message):
        applications.register_weights(**{**arguments, **kwargs})


def test_imagenet_weights_need_1000_classes():
    with pytest.raises(ValueError, match=r'weights="imagenet".*Received: classes=10'):
        se_keras.applications.SEResNet50(classes=10)


def test_imagenet_is_the_default_and_input_shape_is_checked():
    import inspect

    assert (
        inspect.signature(se_keras.applications.SENet154).parameters["weights"].default
        == "imagenet"
    )
    with pytest.raises(ValueError, match=r"input_shape` should be \(224, 224, 3\)"):
        se_keras.applications.SEResNet50(input_shape=(256, 256, 3))


def test_unknown_tag_lists_the_registered_ones():
    with pytest.raises(
        ValueError, match=r"registered tag \('imagenet'\).*Received: weights='imagenet21k'"
    ):
        se_keras.applications.SEResNet101(weights="imagenet21k")


def test_decode_predictions_offline():
    preds = np.zeros((2, 1000), dtype="float32")
    preds[0, [281, 285, 0]] = [0.7, 0.2, 0.1]  # tabby, Egyptian cat, tench
    preds[1, 999] = 1.0
    decoded = imagenet_utils.decode_predictions(preds, top=3)
    assert [entry[:2] for entry in decoded[0]] == [
        ("n02123045", "tabby"),
        ("n02124075", "Egyptian_cat"),
        ("n01440764", "tench"),
    ]
    assert decoded[0][0][2] == pytest.approx(0.7) and decoded[1][0][:2] == (
        "n15075141",
        "toilet_tissue",
    )
    with pytest.raises(ValueError, match=r"shape: \(1, 10\)"):
        imagenet_utils.decode_predictions(np.zeros((1, 10)))


def _small_file(server_dir, relative, content):
    path = server_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return hashlib.sha256(content).hexdigest()


@pytest.fixture
def small_files(isolated):
    """A loopback server over a folder the test fills with small files."""
    files = isolated / "small"
    files.mkdir()
    server = Server(files)
    yield files, server
    server.stop()


def _info(server, relative, sha):
    return weights.WeightsInfo("se_resnet50", "t", "w.bin", (f"{server.url}/{relative}",), sha)


def test_a_cached_file_that_changed_is_downloaded_again(small_files):
    files, server = small_files
    sha = _small_file(files, "w.bin", b"the registered bytes")
    path = download.fetch(_info(server, "w.bin", sha))
    for tampered in (b"the registered", b"other bytes, same size"[:20]):  # truncated, swapped
        with open(path, "wb") as file:
            file.write(tampered)
        assert download.fetch(_info(server, "w.bin", sha)) == path
        assert open(path, "rb").read() == b"the registered bytes"
    server.stop()  # and with no server, a changed file is refused, naming it
    with open(path, "wb") as file:
        file.write(b"swapped")
    with pytest.raises(download.DownloadError, match=r"\(w\.bin\)"):
        download.fetch(_info(server, "w.bin", sha))
    assert _cache_files() == []


def test_same_file_name_with_another_digest_is_not_the_first_file(small_files):
    files, server = small_files
    first = _small_file(files, "a/w.bin", b"first release")
    second = _small_file(files, "b/w.bin", b"second release")
    path = download.fetch(_info(server, "a/w.bin", first))
    assert open(path, "rb").read() == b"first release"
    assert open(download.fetch(_info(server, "b/w.bin", second)), "rb").read() == b"second release"


def test_an_unchanged_cached_file_is_not_hashed_again(small_files, monkeypatch):
    files, server = small_files
    sha = _small_file(files, "w.bin", b"bytes")
    download.fetch(_info(server, "w.bin", sha))
    server.stop()
    monkeypatch.setattr(download, "sha256_of", lambda path: pytest.fail("hashed again"))
    assert download.fetch(_info(server, "w.bin", sha)).endswith("w.bin")


def test_staging_folders_of_killed_processes_are_removed(small_files):
    import subprocess
    import sys

    files, server = small_files
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = os.path.join(download.cache_dir(), f".partial-{dead.stdout.strip()}-abc")
    os.makedirs(os.path.join(stale, "half-written"))
    live = os.path.join(download.cache_dir(), f".partial-{os.getppid()}-def")  # still running
    os.makedirs(live)
    sha = _small_file(files, "w.bin", b"bytes")
    download.fetch(_info(server, "w.bin", sha))
    assert not os.path.exists(stale) and os.path.isdir(live)


def test_a_corrupt_converted_cache_is_rebuilt(served):
    ref, server, sha = served
    applications.register_weights(
        "se_resnet50", "test", origin=f"{server.url}/se_resnet50-test.pth", sha256=sha
    )
    model = se_keras.applications.SEResNet50(weights="test", classifier_activation=None)
    converted = os.path.join(download.cache_dir(), f"se_resnet50-test-{sha[:8]}.npz")
    with open(converted, "r+b") as file:
        file.truncate(1000)
    again = se_keras.applications.SEResNet50(weights="test", classifier_activation=None)
    images = np.random.default_rng(3).standard_normal((1, 224, 224, 3), dtype=np.float32)
    expected = reference_outputs(ref, images)
    assert (
        np.abs(again.predict(images, verbose=0) - expected).max() <= 1e-4 * np.abs(expected).max()
    )
    np.testing.assert_array_equal(
        again.predict(images, verbose=0), model.predict(images, verbose=0)
    )
