"""The benchmark harness (`se_keras.benchmark`) and `se-keras benchmark`: interleaving, the
statistics against NumPy, the base networks against keras.applications, the CLI's table and
its errors, and (slow) every runtime on a small network."""

import json
import pathlib
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from se_keras import cli, export
from se_keras.benchmark import networks, report, runtimes, timing
from se_keras.layers import SqueezeExcite


def test_interleave_times_every_task_once_per_round_serpentine():
    calls = []
    tasks = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    samples = timing.interleave(tasks, rounds=3, warmup=1)
    assert calls == list("abc") + list("abc") + list("cba") + list("abc")
    assert {name: len(values) for name, values in samples.items()} == {"a": 3, "b": 3, "c": 3}


def test_min_seconds_repeats_a_short_task_and_records_the_time_per_call():
    calls = []
    samples = timing.interleave(
        {"sleep": lambda: (calls.append(1), time.sleep(0.01))}, rounds=1, warmup=0, min_seconds=0.05
    )
    (per_call,) = samples["sleep"]
    assert len(calls) >= 2 and per_call >= 0.01 and per_call * len(calls) >= 0.05


def test_paired_ratio_and_spread_against_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(1, 2, 9), rng.uniform(1, 2, 9)
    assert timing.paired_ratio(list(a), list(b)) == pytest.approx(np.median(a / b))
    q1, q3 = np.percentile(a, [25, 75], method="weibull")  # statistics.quantiles' default
    assert timing.spread(list(a)) == pytest.approx((q3 - q1) / 2 / np.median(a))
    with pytest.raises(ValueError):
        timing.paired_ratio([1.0, 2.0], [1.0])  # not timed in the same rounds


def test_peak_memory_grows_with_an_allocation():
    before = timing.peak_rss_bytes()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    assert timing.current_rss_bytes() >= block.nbytes
    assert timing.peak_rss_bytes() >= max(before, timing.current_rss_bytes()) - 2**20
    del block


@pytest.mark.parametrize("text", ["tensorrt", "xla,,foo", ""])
def test_parse_runtimes_names_the_option_and_value(text):
    with pytest.raises(ValueError, match="--runtime"):
        runtimes.parse_runtimes(text)
    assert runtimes.parse_runtimes(" xla, tflite-int8") == ("xla", "tflite-int8")


def test_bad_runtime_is_one_line_and_exit_1():
    result = subprocess.run(
        [sys.executable, "-m", "se_keras.cli", "benchmark", "se_resnet18", "--runtime", "xla,gpu"],
        capture_output=True,
        text=True,
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("se-keras")]
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert errors == [
        "se-keras benchmark: error: Unknown runtime 'gpu'; expected a "
        "comma-separated list of eager, keras, xla, tflite, tflite-int8, onnx, "
        "openvino, openvino-bf16, torch. Received: --runtime xla,gpu"
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["se_resnet9"], "'se_resnet9'"),
        (["se_resnet18", "--batch-size", "0"], "batch_size=0"),
        (["se_resnet18", "--image-size", "16"], "at least 32"),
    ],
)
def test_bad_options_fail_before_measuring(capsys, argv, message):
    assert cli.main(["benchmark", *argv, "--runtime", "keras"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("se-keras benchmark: error:") and message in err


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize(
    "model, keras_name", [("se_mobilenet", "MobileNet"), ("se_resnet50", "ResNet50")]
)
def test_base_network_is_the_keras_applications_network(model, keras_name):
    se, base = networks.networks(model, image_size=64)
    expected = getattr(keras.applications, keras_name)(weights=None, input_shape=(64, 64, 3))
    built = base.build()
    assert [type(layer) for layer in built.layers] == [type(layer) for layer in expected.layers]
    assert _trainable(built) == _trainable(expected)
    assert se.label == model and not any(isinstance(l, SqueezeExcite) for l in built.layers)


def test_families_without_a_keras_base_compare_with_se_ratio_none():
    se, base = networks.networks("se_resnext50", image_size=32)
    assert base.label == "se_resnext50 se_ratio=None"
    built, with_se = base.build(), se.build()
    assert not any(isinstance(layer, SqueezeExcite) for layer in built.layers)
    se_weights = sum(_trainable(l) for l in with_se.layers if isinstance(l, SqueezeExcite))
    assert _trainable(with_se) - _trainable(built) == se_weights > 0
    assert networks.networks("se_inception_v3")[0].image_size == 299
    assert networks.PAPER_MACS["se_resnet50"] == (3.87e9, 3.86e9)  # PAPER.md


def test_cli_prints_the_tables_and_writes_the_measurements(tmp_path, capsys):
    output = tmp_path / "results.json"
    argv = [
        "benchmark",
        "se_resnet18",
        "--image-size",
        "32",
        "--batch-size",
        "1",
        "--runtime",
        "keras",
        "--rounds",
        "3",
        "--compare",
        "--json",
        str(output),
    ]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    results = json.loads(output.read_text())
    se, base = (
        networks.Network("se_resnet18", role, label, 32).build()
        for role, label in (("se", "se_resnet18"), ("base", "x"))
    )
    network_rows = [line.split() for line in lines if line.startswith("se_resnet18 ")]
    assert network_rows[0][:3] == ["se_resnet18", "32x32", f"{_trainable(se) / 1e6:.2f}M"]
    assert network_rows[1][:4] == [
        "se_resnet18",
        "se_ratio=None",
        "32x32",
        f"{_trainable(base) / 1e6:.2f}M",
    ]
    (row,) = [line.split() for line in lines if line.startswith("keras ")]
    samples = {e["network"]: np.array(e["seconds"]) for e in results["inference"]}
    assert [len(s) for s in samples.values()] == [3, 3]
    ratio = np.median(samples["se_resnet18"] / samples["se_resnet18 se_ratio=None"])
    assert row[1] == "1" and row[-1] == f"{ratio:.3f}"
    assert row[2] == f"{np.median(samples['se_resnet18']) * 1e3:.3g}" and row[3] == "ms"
    assert results["machine"]["threads"] >= 1


def test_int8_dot_product_and_instruction_sets_from_the_cpu_flags(tmp_path):
    from se_keras.benchmark.suite import instruction_sets, int8_dot_product

    cpus = {
        "zen3": "model name\t: AMD EPYC\nflags\t\t: fpu sse4_1 avx2 fma\n",
        "sapphire": "flags\t\t: avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8\n",
        "arm": "Features\t: fp asimd asimddp i8mm bf16\n",
    }
    for name, text in cpus.items():
        (tmp_path / name).write_text(text)
    found = {name: int8_dot_product(str(tmp_path / name)) for name in cpus}
    assert found == {
        "zen3": [],
        "sapphire": ["avx512_vnni", "amx_int8"],
        "arm": ["asimddp", "i8mm"],
    }
    sets = {name: instruction_sets(str(tmp_path / name)) for name in cpus}
    assert sets == {
        "zen3": ["AVX2"],
        "sapphire": ["AVX2", "AVX-512F", "AVX-512 VNNI", "AVX-512 BF16", "AMX-BF16", "AMX-INT8"],
        "arm": ["ARM dot product", "ARM int8 matrix multiply", "ARM BF16"],
    }
    missing = str(tmp_path / "missing")
    assert int8_dot_product(missing) is None and instruction_sets(missing) is None
    machine = {"cpu": "X", "cores": 2, "threads": 2, "load_average_before": 1.0}
    line = report.settings_line(
        {"machine": {**machine, "instruction_sets": sets["zen3"]}, "settings": {"rounds": 3}}
    )
    assert line.startswith("X (AVX2), 2 cores")


def test_report_marks_a_failed_runtime_and_keeps_the_others():
    results = {
        "networks": [
            {"model": "m", "role": "se", "label": "se"},
            {"model": "m", "role": "base", "label": "base"},
        ],
        "inference": [
            {
                "model": "m",
                "network": "se",
                "runtime": "xla",
                "batch_size": 1,
                "seconds": [2.0, 4.0, 3.0],
                "median_s": 3.0,
            },
            {
                "model": "m",
                "network": "base",
                "runtime": "xla",
                "batch_size": 1,
                "seconds": [1.0, 4.0, 2.0],
                "median_s": 2.0,
            },
            {
                "model": "m",
                "network": "se",
                "runtime": "onnx",
                "batch_size": 1,
                "error": "ValueError: no",
            },
        ],
    }
    table = report.inference_table(results, "m")
    # SE / base: the median of the per-round ratios 2/1, 4/4, 3/2, not 3 s / 2 s.
    assert table[1] == ("xla", "1", "3 s", "0.333/s", "2 s", "0.5/s", "1.500")
    assert table[2][:3] == ("onnx", "1", "ValueError: no")


@pytest.mark.slow
def test_every_runtime_and_memory_on_a_small_network(tmp_path):
    """Exports (TFLite float and int8, ONNX) through se_keras.export, each timed; peak memory
    of a TFLite file is at least the file it loads."""
    from se_keras.benchmark import Settings, run

    settings = Settings(
        models=("se_mobilenet",),
        runtimes=("eager", "tflite", "tflite-int8", "onnx", "openvino", "openvino-bf16"),
        batch_sizes=(1, 2),
        rounds=2,
        image_size=32,
        memory=True,
        train_batch_size=2,
        cache_dir=str(tmp_path),
    )
    results = run(settings)
    failures = [e for e in results["inference"] + results["memory"] if "error" in e]
    if "BF16" not in export.openvino.cpu_capabilities():  # said so, for that runtime only
        assert {e["runtime"] for e in failures} <= {"openvino-bf16"}, failures
        failures = []
    assert failures == []
    assert len(results["inference"]) == 2 * 6 * 2 and len(results["training"]) == 2
    files = {path.name.split("-b")[0] for path in tmp_path.iterdir() if path.suffix != ".bin"}
    # 2 networks x 4 exports (both OpenVINO runtimes run one IR), dynamic batch, reused.
    assert len(files) == 8
    files = {path.name.split("-b")[0]: path for path in tmp_path.iterdir()}
    peak = {(e["network"], e["runtime"]): e["peak_bytes"] for e in results["memory"]}
    tflite = {
        name.split("-")[0]: p
        for name, p in files.items()
        if "-tflite-" in name and "int8" not in name
    }
    assert peak["se_mobilenet", "tflite"] >= tflite["se_mobilenet"].stat().st_size
    # The fast path: SE adds no XNNPACK partition (each one is a round trip to TFLite's own
    # kernels), in the float file or the full-integer one; a dynamic reshape or expand_dims
    # in the layer would.
    assert _delegates(tflite["se_mobilenet"]) == _delegates(tflite["MobileNet"])
    int8 = {name.split("-")[0]: p for name, p in files.items() if "-tflite-int8-" in name}
    assert _delegates(int8["se_mobilenet"]) == _delegates(int8["MobileNet"])


def _delegates(path):
    """XNNPACK partitions of a TFLite file (the interpreter's default delegate)."""
    from se_keras.export import tflite

    interpreter = tflite.interpreter(path, num_threads=1)
    return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


@pytest.mark.slow
def test_the_authors_pytorch_model_is_timed_next_to_ours(senet):
    from se_keras.benchmark import Settings, run

    results = run(Settings(models=("se_resnet50",), runtimes=("xla",), batch_sizes=(1,), rounds=2))
    timed = {(e["network"], e["runtime"]) for e in results["inference"] if "median_s" in e}
    assert timed == {
        ("se_resnet50", "xla"),
        ("ResNet50 (keras.applications)", "xla"),
        ("se_resnet50", "torch"),
    }


def test_both_openvino_runtimes_share_one_ir_and_its_weights(tmp_path, monkeypatch):
    from se_keras.benchmark import isolated

    exported = []

    def fake_export(runtime, network, path, batch_size):  # what the child process writes
        exported.append(runtime)
        for suffix in (".xml", ".bin"):
            pathlib.Path(path).with_suffix(suffix).write_text(runtime)
        return None  # a dynamic batch

    monkeypatch.setattr(isolated, "export", fake_export)
    network = networks.networks("se_resnet18", 32, compare=False)[0]
    artifacts = runtimes.Artifacts(str(tmp_path))
    paths = {rt: artifacts.get(rt, network, 8) for rt in ("openvino", "openvino-bf16")}
    assert exported == ["openvino"] and paths["openvino"] == paths["openvino-bf16"]
    assert paths["openvino"].endswith("-bdynamic.xml")
    stem = pathlib.Path(paths["openvino"]).stem
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{stem}.bin", f"{stem}.xml"]


def test_openvino_runtimes_run_the_exported_ir(tmp_path, monkeypatch):
    from se_keras import export

    network = networks.networks("se_resnet18", 32, compare=False)[0]
    model = network.build()
    path = str(tmp_path / "m.xml")
    export.export_model(model, path, "openvino")
    expected = model.predict(runtimes.images(network, 2), verbose=0)
    scale = max(1, np.abs(expected).max())
    runs = [("openvino", 1e-4)]
    if "BF16" in export.openvino.cpu_capabilities():
        runs.append(("openvino-bf16", 5e-2))
    for runtime, tolerance in runs:
        outputs = runtimes.load(runtime, network, 2, 1, path=path)()
        assert np.abs(outputs[0] - expected).max() <= tolerance * scale
    # Where the CPU cannot run bf16, that runtime says so (the run records it and goes on).
    monkeypatch.setattr(export.openvino, "cpu_capabilities", lambda: ("FP32", "INT8"))
    with pytest.raises(ValueError, match="precision='f32' is what runs here"):
        runtimes.load("openvino-bf16", network, 2, 1, path=path)
