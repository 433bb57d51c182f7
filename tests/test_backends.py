"""Every model on the TensorFlow, JAX and PyTorch backends, and under XLA (issue 9).

The backend is fixed when keras is imported, so each backend runs in its own process
(tests/backend_worker.py), all three at once: TensorFlow builds each model with random,
well-conditioned weights (random BatchNorm statistics included) and saves it; JAX and torch
load its `.keras` file, and its `.weights.h5` into a fresh build, and run the same input.
Every backend runs one `fit` step: XLA-compiled on JAX (its default), and on TensorFlow for
the default tier's models that no other test trains under XLA (`XLA_FIT`). The default tier
takes one model per family, whose `.keras` files JAX and torch also save; one of them is
loaded back here on TensorFlow. The slow tier adds a model of every other block type,
`pytest -m exhaustive` every other registered model.

Tolerances: 1e-4 between backends on logits of order one (kernels sum in different orders;
measured up to 1e-5), and 1e-5 of the logit scale (`max(1, max |logit|)`) between XLA and
non-compiled TensorFlow (measured up to 7e-6, in VGG's 4096-wide dense layers).
"""

import json
import os
import shutil
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import se_keras
from se_keras.applications import list_models
from tests import timm_small

WORKER = os.path.join(os.path.dirname(__file__), "backend_worker.py")
READERS = ("jax", "torch")
# The cheapest model of each family stands for it in the default tier.
DEFAULT = [
    "se_resnet18",
    "se_bn_inception",
    "se_mobilenet",
    "se_shufflenet",
    "se_vgg16",
    # timm's family: a narrow network with its deep stem, avg-down shortcuts and anti-aliased
    # downsampling (tests/timm_small.py; built by the worker, not the registry).
    "timm_small_aa_d",
]
# The slow tier: a model of each layer the default tier lacks (grouped convolutions, the
# Inception-ResNet modules' scaled residuals, the inverted residual's ReLU6, ShuffleNet v2's
# channel split); with `pytest -m exhaustive`, the others, whose layers the default tier's
# models already run (SE-ResNet-50's bottleneck, Inception-v3's modules, timm's basic unit),
# and the deeper variants (an hour and more on 2 cores).
SLOW = ["se_resnext50", "se_inception_resnet_v2", "se_mobilenet_v2", "se_shufflenet_v2"]
EXHAUSTIVE = [name for name in list_models() if name not in DEFAULT + SLOW]


def _registered(name):
    """The registered model of `name`, or of the registered layout a small one narrows."""
    return timm_small.SMALL[name][1] if name in timm_small.SMALL else name


def test_tier_lists_name_registered_models():
    # A renamed or removed model fails here instead of silently leaving a tier.
    assert {_registered(name) for name in DEFAULT + SLOW} <= set(list_models())
    families = {se_keras.applications.family_module(_registered(name)) for name in DEFAULT}
    assert families == set(se_keras.applications.FAMILIES)  # every family, once


# Inputs of 64 x 64 (the Inceptions' smallest, 75): the backends' agreement does not depend
# on the input's size, and the slow tier's fit steps cost 12x as much at 224.
SIZES = {"se_inception_v3": 75, "se_inception_resnet_v2": 75}
# TensorFlow's `fit` step runs under XLA for the default tier's models that no other test
# trains under XLA (test_training.py's test_fit_under_xla_for_every_family and
# test_se_mobile.py's shufflenets do the others); elsewhere a plain step: XLA-compiling the
# training step of every large model would cost the slow tier many minutes of CI and show
# nothing a family's smallest model does not.
XLA_FIT_ELSEWHERE = (
    "se_resnet18",
    "se_resnext50",
    "se_inception_v3",
    "se_bn_inception",
    "se_shufflenet",
    "se_shufflenet_v2",
)
XLA_FIT = [name for name in DEFAULT if name not in XLA_FIT_ELSEWHERE]
TIMEOUT = 3600

CASES = (
    [pytest.param(name, id=name) for name in DEFAULT]
    + [pytest.param(name, id=name, marks=pytest.mark.slow) for name in SLOW]
    + [pytest.param(name, id=name, marks=pytest.mark.exhaustive) for name in EXHAUSTIVE]
)
# Files saved on JAX and torch, loaded here: the model with the most custom parts
# (ChannelShuffle, grouped convolutions).
REVERSE = "se_shufflenet" if "se_shufflenet" in DEFAULT else DEFAULT[0]


def _selected(session, module):
    """The models of this module's selected tests, in registry order."""
    names = {
        item.callspec.params.get("name")
        for item in session.items
        if item.module is module and hasattr(item, "callspec")
    }
    return [name for name in DEFAULT + SLOW + EXHAUSTIVE if name in names]


def _start(directory, backend, specs, source=None):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, WORKER, directory, *specs, *(["--source", source] if source else [])]
    log = open(os.path.join(directory, f"{backend}.log"), "w")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def _drop_read_files(directory, names):
    """TensorFlow's model files, once both readers are past them (SENet-154: 0.9 GB)."""
    for name in names:
        if all(os.path.exists(os.path.join(directory, b, f"{name}.done")) for b in READERS):
            for suffix in ("keras", "weights.h5"):
                path = os.path.join(directory, "tensorflow", f"{name}.{suffix}")
                if os.path.exists(path):
                    os.remove(path)


def _wait(directory, processes, names):
    """Wait for every worker; on the first failure stop the others and show its log."""
    deadline = time.time() + TIMEOUT
    while any(p.poll() is None for p in processes.values()) and time.time() < deadline:
        if any(p.poll() not in (None, 0) for p in processes.values()):
            break
        _drop_read_files(directory, names)
        time.sleep(1)
    for process in processes.values():
        if process.poll() is None:
            process.kill()
            process.wait()
    for backend, process in processes.items():
        if process.returncode:
            with open(os.path.join(directory, f"{backend}.log")) as file:
                pytest.fail(f"the {backend} worker failed:\n{file.read()[-4000:]}")


class Run:
    """What the workers wrote: `results[backend][name]`, `output(backend, name, kind)`."""

    def __init__(self, directory, results):
        self.directory, self.results = directory, results

    def path(self, backend, name, suffix):
        return os.path.join(self.directory, backend, f"{name}.{suffix}")

    def output(self, backend, name, kind="out"):
        return np.load(self.path(backend, name, f"{kind}.npy"))


@pytest.fixture(scope="module")
def run(request, tmp_path_factory):
    """All three backends on the selected models."""
    names = _selected(request.session, request.module)
    directory = str(tmp_path_factory.mktemp("backends"))
    rng = np.random.default_rng(0)
    for name in names:
        size = SIZES.get(name, 64)
        np.save(
            os.path.join(directory, f"{name}.input.npy"),
            rng.uniform(-1, 1, (2, size, size, 3)).astype("float32"),
        )
    spec = {name: f"{name}:{SIZES.get(name, 64)}" for name in names}
    start = time.perf_counter()
    processes = {
        "tensorflow": _start(
            directory, "tensorflow", [spec[n] + (":jx" if n in XLA_FIT else ":jf") for n in names]
        )
    }
    reader_specs = [spec[n] + (":fs" if n in DEFAULT else ":f") for n in names]
    processes.update({b: _start(directory, b, reader_specs, "tensorflow") for b in READERS})
    _wait(directory, processes, names)
    results, cpu = {}, {}
    for backend in processes:
        with open(os.path.join(directory, backend, "results.json")) as file:
            saved = json.load(file)
        results[backend], cpu[backend] = (
            {r["name"]: r for r in saved["models"]},
            saved["cpu_seconds"],
        )
    print(f"\nbackend workers: {time.perf_counter() - start:.0f} s for {names}; CPU seconds {cpu}")
    yield Run(directory, results)
    shutil.rmtree(directory, ignore_errors=True)


def _max_diff(a, b):
    assert a.shape == b.shape == (2, 10)
    return float(np.abs(a - b).max())


@pytest.mark.parametrize("name", CASES)
def test_jax_and_torch_give_tensorflows_outputs(run, name):
    reference = run.output("tensorflow", name)
    # Logits of order one that differ between the two images by far more than the tolerance.
    assert 0.05 < np.abs(reference).max() < 100 and np.abs(reference[0] - reference[1]).max() > 1e-3
    diffs = {
        f"{b} {kind}": _max_diff(run.output(b, name, kind), reference)
        for b in READERS
        for kind in ("out", "h5")
    }
    print(
        f"\n{name}: max |logit| {np.abs(reference).max():.3g}, max |diff| to TF:",
        ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()),
    )
    assert max(diffs.values()) < 1e-4, diffs


@pytest.mark.parametrize("name", CASES)
def test_fit_step_on_every_backend(run, name):
    for backend in ("tensorflow", *READERS):
        result = run.results[backend][name]
        assert np.isfinite(result["loss"]) and result["loss"] > 0, (backend, result)
        # Every weight moves but some BatchNorm offsets: those followed by a linear layer
        # and a training-mode BatchNorm, which removes any constant (zero gradient).
        assert all(path.endswith("/beta") for path in result["unchanged"]), (backend, result)
    # XLA on JAX by default, none on torch; on TensorFlow where asked for.
    assert run.results["jax"][name]["fit_jit"] and not run.results["torch"][name]["fit_jit"]
    assert run.results["tensorflow"][name]["fit_jit"] == (name in XLA_FIT)


@pytest.mark.parametrize("name", CASES)
def test_xla_predict_matches_non_compiled(run, name):
    tf_result, jax_result = run.results["tensorflow"][name], run.results["jax"][name]
    assert not tf_result["predict_jit"] and tf_result["jit_predict_jit"]
    assert jax_result["predict_jit"]  # JAX's predict is XLA-compiled by default
    reference = run.output("tensorflow", name)
    diff = _max_diff(run.output("tensorflow", name, "jit"), reference)
    print(f"\n{name}: XLA vs non-compiled TensorFlow max |diff| {diff:.1e}")
    assert diff < 1e-5 * max(1.0, np.abs(reference).max())


@pytest.mark.parametrize("name", [REVERSE])
def test_keras_files_from_jax_and_torch_load_on_tensorflow(run, name):
    assert keras.backend.backend() == "tensorflow"
    reference = run.output("tensorflow", name)
    x = np.load(os.path.join(run.directory, f"{name}.input.npy"))
    for backend in READERS:
        model = keras.saving.load_model(run.path(backend, name, "keras"))
        assert _max_diff(model.predict(x, verbose=0), reference) < 1e-4, backend
        keras.backend.clear_session()
