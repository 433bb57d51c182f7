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
from se_keras.utils import timm_import


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
        "openvino, openvino-bf16, torch, timm. Received: --runtime xla,gpu"
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["se_resnet9"], "'se_resnet9'"),
        (["se_resnet18", "--batch-size", "0"], "batch_size=0"),
        (["se_resnet18", "--image-size", "16"], "at least 32"),
        (["se_mobilenet", "--runtime", "keras,timm"], "timm has the SE-ResNet"),
        (["se_resnet18", "--runtime", "torch"], "not for se_resnet18"),
    ],
)
def test_bad_options_fail_before_measuring(capsys, argv, message):
    runtime = [] if "--runtime" in argv else ["--runtime", "keras"]
    assert cli.main(["benchmark", *argv, *runtime]) == 1
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
    keras_runs = [e for e in results["inference"] if e["runtime"] == "keras"]
    samples = {e["network"]: np.array(e["seconds"]) for e in keras_runs}
    assert [len(s) for s in samples.values()] == [3, 3]
    ratio = np.median(samples["se_resnet18"] / samples["se_resnet18 se_ratio=None"])
    assert row[1] == "1" and row[-1] == f"{ratio:.3f}"
    assert row[2] == f"{np.median(samples['se_resnet18']) * 1e3:.3g}" and row[3] == "ms"
    assert results["machine"]["threads"] >= 1


def test_int8_dot_product_and_instruction_sets_from_the_cpu_flags(tmp_path):
    from se_keras.benchmark.machine import instruction_sets, int8_dot_product

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
    # No GEMM or outputs measured: those columns say so.
    assert table[1] == ("xla", "1", "3 s", "0.333/s", "-", "-", "2 s", "0.5/s", "1.500")
    assert table[2][:3] == ("onnx", "1", "ValueError: no")


def _results(gemm_flop_per_s, rows):
    """Hand-made results of model "m": `rows` are (runtime, median seconds, relative
    difference) of the SE network, which has 1e9 multiply-adds."""
    return {
        "networks": [{"model": "m", "role": "se", "label": "se", "macs": 1e9}],
        "gemm": [{"model": "m", "batch_size": 4, "size": 8, "flop_per_s": gemm_flop_per_s}],
        "machine": {"threads": 2},
        "inference": [
            {
                "model": "m",
                "network": "se",
                "runtime": runtime,
                "batch_size": 4,
                "seconds": [seconds] * 3,
                "median_s": seconds,
                **({} if difference is None else {"relative_difference": difference}),
            }
            for runtime, seconds, difference in rows
        ],
    }


def test_the_gemm_fraction_and_the_fastest_runtime_within_each_tolerance():
    results = _results(
        100e9,
        [
            ("tflite", 0.50, 3e-7),
            ("openvino", 0.40, 2e-5),
            ("onnx", 0.30, 2e-4),  # fast, but outside float32's tolerance
            ("openvino-bf16", 0.20, 5e-3),
            ("tflite-int8", 0.15, 0.1),
            ("timm", 0.10, None),  # other weights: never a candidate
        ],
    )
    # 4 images x 2 FLOP x 1e9 multiply-adds in 0.4 s = 20 GFLOP/s = 20% of 100 GFLOP/s.
    assert report.gemm_fraction(results, "m", "se", "openvino", 4) == pytest.approx(0.2)
    assert report.fastest(results, "m", 4) == [
        ("float32", 1e-4, "openvino", 0.40),
        ("bf16", 3e-2, "openvino-bf16", 0.20),
        ("int8", 0.35, "tflite-int8", 0.15),
    ]
    line = report.fastest_line(results, "m", 4)
    assert "float32-level (max diff <= 0.0001 x scale) openvino 400 ms" in line
    assert report.gemm_line(results, "m").endswith("numpy 100 GFLOP/s (batch 4 rounds)")
    # The ceiling is the best library's rate.
    results["gemm"].append({**results["gemm"][0], "library": "torch", "flop_per_s": 200e9})
    assert report.gemm_fraction(results, "m", "se", "openvino", 4) == pytest.approx(0.1)
    nothing = _results(100e9, [("timm", 0.1, None)])
    assert report.fastest_line(nothing, "m", 4).endswith("no runtime of ours was measured")


def test_gemm_task_is_a_float32_matrix_product_at_the_thread_count():
    from threadpoolctl import threadpool_info

    from se_keras.benchmark import machine

    tasks = machine.gemm_tasks(1, size=64)
    assert sorted(tasks) == ["numpy", "torch"]
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((64, 64), dtype=np.float32) for _ in range(2))
    for run, flop in tasks.values():
        product = run()
        assert product.dtype == np.float32 and product.shape == (64, 64) and flop == 2 * 64**3
        np.testing.assert_allclose(product, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
    assert any(pool["user_api"] == "blas" for pool in threadpool_info())


def test_the_timm_runtime_runs_timms_network_and_its_base_without_se(timm):
    se, base = networks.networks("se_resnet50", 64)
    assert se.timm_arch == base.timm_arch == "seresnet50"
    assert networks.networks("timm_seresnext50_32x4d", 64)[0].timm_arch == "seresnext50_32x4d"
    assert networks.networks("se_mobilenet", 64)[0].timm_arch is None
    assert not runtimes.applies("timm", networks.networks("se_mobilenet", 64)[0])

    def parameters(module):
        return sum(p.numel() for p in module.parameters())

    # timm's seresnet50 without SE is timm's resnet50 (an independent count).
    assert parameters(runtimes._torch_network("timm", base)) == parameters(
        timm.create_model("resnet50")
    )
    assert parameters(runtimes._torch_network("timm", se)) == parameters(
        timm.create_model("seresnet50")
    )
    logits = runtimes.load("timm", se, 2, 1)()
    assert logits.shape == (2, 1000) and logits.dtype == np.float32


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
    # Each runtime's outputs measured against Keras, within its precision's tolerance; the
    # machine's GEMM timed in the rounds of each batch size.
    for entry in results["inference"]:
        level = {"tflite-int8": "int8", "openvino-bf16": "bf16"}.get(entry["runtime"])
        assert entry["relative_difference"] <= export.TOLERANCES[level], entry
    assert [(g["batch_size"], g["library"]) for g in results["gemm"]] == [
        (1, "numpy"),
        (1, "torch"),
        (2, "numpy"),
        (2, "torch"),
    ]
    assert all(g["flop_per_s"] > 1e9 for g in results["gemm"])
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
    expected = {
        ("se_resnet50", "xla"),
        ("ResNet50 (keras.applications)", "xla"),
        ("se_resnet50", "torch"),
    }
    if timm_import.load_timm() is not None:  # timm's seresnet50 and resnet50, same rounds
        expected |= {("se_resnet50", "timm"), ("ResNet50 (keras.applications)", "timm")}
    assert timed == expected
    assert "timm (seresnet50)" in report.full_text(results)


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
    tmp_path = tmp_path / "cache"  # a first run: the cache folder is made
    artifacts = runtimes.Artifacts(str(tmp_path))
    assert tmp_path.is_dir()
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
        assert np.abs(outputs - expected).max() <= tolerance * scale
    # Where the CPU cannot run bf16, that runtime says so (the run records it and goes on).
    monkeypatch.setattr(export.openvino, "cpu_capabilities", lambda: ("FP32", "INT8"))
    with pytest.raises(ValueError, match="precision='f32' is what runs here"):
        runtimes.load("openvino-bf16", network, 2, 1, path=path)
