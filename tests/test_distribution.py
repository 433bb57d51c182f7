"""`--strategy`: MirroredStrategy over two logical CPUs, MultiWorkerMirroredStrategy with two
worker processes on 127.0.0.1, and Keras' DataParallel over two JAX CPU devices, each against
a single-device run on the loss of the first training step; and a whole multi-worker run.

Tolerance: 1e-5 relative. The first step runs the same initial weights on the same examples;
only the order of floating-point reductions may differ (measured: 1.5e-7 for the two workers).
"""

import csv
import json
import os
import socket
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "distributed_step.py")


def _start(command, env=None):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _output(process):
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return out.strip().splitlines()[-1]


def _run(mode, env=None):
    return json.loads(_output(_start([sys.executable, SCRIPT, mode], env)))


@pytest.fixture(scope="module")
def single_device_loss():
    return _run("none")["loss"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mirrored_strategy_over_two_logical_cpus(single_device_loss):
    assert _run("mirrored")["loss"] == pytest.approx(single_device_loss, rel=1e-5)


def _two_workers(command):
    """`command` run as worker 0 (the chief) and worker 1 of a cluster on 127.0.0.1: the last
    line each prints."""
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    processes = [
        _start(
            command,
            env={
                "TF_CONFIG": json.dumps(
                    {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
                )
            },
        )
        for index in range(2)
    ]
    return [_output(process) for process in processes]


@pytest.mark.slow
def test_multiworker_strategy_with_two_local_workers(single_device_loss):
    # Keras' fit cannot run there (keras-team/keras#20585): this is the custom loop.
    lines = _two_workers([sys.executable, SCRIPT, "multiworker"])
    losses = [json.loads(line)["loss"] for line in lines]
    assert losses == pytest.approx([single_device_loss] * 2, rel=1e-5)


@pytest.mark.slow
def test_multiworker_run_writes_one_set_of_outputs_and_resumes(tmp_path):
    from se_keras import data
    from se_keras.training import evaluate

    out, tfds_dir = tmp_path / "out", str(tmp_path / "tfds")
    data.dataset_info("digits", tfds_dir)  # prepared here: two workers would race to prepare it
    command = [
        sys.executable,
        "-m",
        "se_keras.cli",
        "train",
        "--strategy",
        "multiworker",
        "--epochs",
        "2",
        "--export",
        "none",
        "--output-dir",
        str(out),
        "--data-dir",
        tfds_dir,
    ]
    lines = _two_workers(command)
    # Only the chief wrote into the folder (one row per epoch); both evaluated the same model.
    assert sorted(os.listdir(out)) == [
        "checkpoints",
        "config.json",
        "curves.png",
        "history.csv",
        "logs",
        "model.keras",
        "summary.json",
    ]
    assert _epochs(out) == [0, 1]
    assert lines[0].split(";")[0] == lines[1].split(";")[0]  # "test accuracy ... (top-5 ...)"
    # That model is the saved one: evaluated on one device, it gives the reported accuracy.
    summary = json.loads((out / "summary.json").read_text())
    single = evaluate("se_resnet18", str(out / "model.keras"), "digits", data_dir=tfds_dir)
    assert single["top1"] == pytest.approx(summary["test_accuracy"], abs=1e-4)

    # Killed after the second epoch's checkpoint but before its state: both workers resume
    # from the checkpoint, redo that epoch, and the chief keeps one row for it. (A finished
    # run keeps only model.keras, the checkpoint it was saved from: put back as it was.)
    (out / "model.keras").rename(out / "checkpoints" / "last.keras")
    (out / "checkpoints" / "state.json").write_text(json.dumps({"completed_epoch": 0}))
    (out / "summary.json").unlink()
    _two_workers(command)
    assert _epochs(out) == [0, 1] and (out / "summary.json").exists()
    assert os.listdir(out / "checkpoints") == ["state.json"]


def _epochs(output_dir):
    with open(output_dir / "history.csv", newline="") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


@pytest.mark.slow
def test_data_parallel_over_two_jax_devices():
    # Against a single-device JAX run: the backends draw different initial weights.
    single = _run("none", env={"KERAS_BACKEND": "jax"})
    result = _run(
        "data_parallel",
        env={"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )
    assert single["backend"] == result["backend"] == "jax"
    assert result["loss"] == pytest.approx(single["loss"], rel=1e-5)


def test_strategy_needs_its_backend():
    from se_keras.training.run import distribution_scope

    with pytest.raises(ValueError, match="--strategy data_parallel needs KERAS_BACKEND=jax"):
        distribution_scope("data_parallel")
