"""SavedModel, TFLite and ONNX exports: each artifact run in its own runtime (loaded here with
the runtimes' own APIs, not through se_keras.export) and compared with the Keras model."""

import glob
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from se_keras import applications, cli, export
from se_keras.benchmark.realistic import digits_model as train_digits_model
from se_keras.benchmark.realistic import randomize_batch_norm
from se_keras.benchmark.realistic import realistic_model as small_model
from tests import timm_small
from tests.helpers import (
    RUNNERS,
    SUFFIX,
    builtin_operators,
    images,
    run_onnx,
    run_openvino,
    run_tflite,
)

# A model of every family at a small input (default tier); every model at full size is slow.
SMALL = {
    "se_resnet18": 64,
    "se_bn_inception": 96,
    "se_mobilenet_v2": 64,
    "se_shufflenet": 64,
    "se_vgg16": 32,
    "timm_seresnext26t_32x4d": 64,  # grouped units, deep stem, average-pool shortcuts
}
FLOAT_TOLERANCE = 1e-4
# OpenVINO's bfloat16, relative to the logit scale: 4e-3 to 8e-3 measured (docs/export.md).
BF16_TOLERANCE = 2e-2


def check_every_format(model, folder):
    x = images(model)
    expected = model.predict(x, verbose=0)
    # Compared relative to the logits' scale: SE-VGG's thirteen gates of ~0.5 leave logits
    # of ~1e-4, where an absolute 1e-4 would compare nothing.
    scale = np.abs(expected).max()
    assert expected.std() > 0.1 * scale  # outputs that are not all alike
    for format in export.FORMATS:
        path = os.path.join(folder, f"{model.name}-{format}{SUFFIX[format]}")
        report = export.export_model(model, path, format)
        actual = RUNNERS[format](path, x)
        difference = np.abs(actual - expected).max()
        print(f"{model.name} {format}: max |difference| {difference:.2e}, logit scale {scale:.2e}")
        assert difference <= FLOAT_TOLERANCE * scale, (format, difference, scale)
        assert report.path == path
        if format == "tflite":
            assert set(report.operators) <= builtin_operators(), report.operators
        if format == "onnx":
            check_onnx_graph(path, model)
        if format == "openvino":
            check_openvino_ir(path, model, report, x, expected)


def check_openvino_ir(path, model, report, x, expected):
    import openvino

    weights = path[: -len(".xml")] + ".bin"
    assert report.size_bytes == os.path.getsize(path) + os.path.getsize(weights)
    assert report.precision == "f32" and export.openvino.recorded_precision(path) == "f32"
    graph = openvino.Core().read_model(path)
    assert graph.inputs[0].get_partial_shape()[0].is_dynamic  # a dynamic batch axis
    # Grouped and depthwise convolutions are OpenVINO's GroupConvolution, one per layer.
    grouped = sum(
        isinstance(layer, keras.layers.DepthwiseConv2D)
        or (isinstance(layer, keras.layers.Conv2D) and layer.groups > 1)
        for layer in model.layers
    )
    assert report.operators.get("GroupConvolution", 0) == grouped, report.operators
    # The same file in bfloat16 (where the CPU has it), at bf16's tolerance.
    if "BF16" in export.openvino.cpu_capabilities():
        scale = np.abs(expected).max()
        difference = np.abs(RUNNERS["openvino"](path, x, "bf16") - expected).max()
        print(f"{model.name} openvino bf16: max |difference| {difference:.2e}, scale {scale:.2e}")
        assert difference <= BF16_TOLERANCE * scale, difference


def check_onnx_graph(path, model):
    import onnx

    graph = onnx.load(path).graph
    assert not [n.op_type for n in graph.node if "PartitionedCall" in n.op_type]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a dynamic batch axis
    grouped = [
        layer.groups
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.groups > 1
    ]
    groups = [
        a.i
        for n in graph.node
        if n.op_type == "Conv"
        for a in n.attribute
        if a.name == "group" and a.i > 1
    ]
    depthwise = sum(isinstance(layer, keras.layers.DepthwiseConv2D) for layer in model.layers)
    # Each grouped convolution is one Conv node with its `group` (depthwise ones too).
    assert len(groups) == len(grouped) + depthwise and set(grouped) <= set(groups)
    # SE scales multiply in the convolutions' NCHW layout, not between a pair of Transposes.
    producers = {output: node.op_type for node in graph.node for output in node.output}
    assert not [
        n.name
        for n in graph.node
        if n.op_type == "Mul" and any(producers.get(i) == "Transpose" for i in n.input)
    ]


# timm's family (20 s here) in the slow tier, to keep the default tier's time.
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if "timm" in n else n for n in sorted(SMALL)]
)
def test_every_family_exports_and_verifies(name, tmp_path):
    check_every_format(small_model(name, SMALL[name]), str(tmp_path))


# timm's average pools, narrowed (tests/timm_small.py): anti-aliasing and avg-down shortcuts
# in the default tier (10 s here), the ceil-mode shortcut pools at odd sides (72) slow.
@pytest.mark.parametrize(
    "name, size",
    [("timm_small_aa_d", 64), pytest.param("timm_small_d", 72, marks=pytest.mark.slow)],
)
def test_timm_average_pool_networks_export_and_verify(name, size, tmp_path):
    model = timm_small.build(
        name, input_shape=(size, size, 3), classes=10, classifier_activation=None
    )
    randomize_batch_norm(model, seed=0)
    check_every_format(model, str(tmp_path))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    x = images(model, n=2)
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


# With the exhaustive tier: what timm's family adds is exported at small size in the default
# and slow tiers (timm_small_aa_d, timm_small_d), and a grouped bottleneck at full size in the
# slow tier (SE-ResNeXt-50); this is their product at full size (TFLite: 4 GB of memory and
# two minutes; ONNX: more than a 23 GB machine has free, tf2onnx taking 5.8 GB for
# SE-ResNeXt-50's 110 MB).
@pytest.mark.exhaustive
@pytest.mark.parametrize("format", ["onnx", "tflite"])
def test_full_size_anti_aliased_timm_model_exports(format, tmp_path):
    """SE-ResNeXt-AA-101-D at its 288 x 288: every part timm's family adds, at full size."""
    model = small_model("timm_seresnextaa101d_32x8d", classes=1000)
    x = images(model, n=2)
    expected = model.predict(x, verbose=0)
    path = str(tmp_path / f"model{SUFFIX[format]}")
    report = export.export_model(model, path, format)  # verifies it against Keras
    difference = np.abs(RUNNERS[format](path, x) - expected).max()
    scale = np.abs(expected).max()
    print(f"{model.name} {format}: max |difference| {difference:.2e}, logit scale {scale:.2e}")
    assert difference <= FLOAT_TOLERANCE * scale and report.path == path


# At full size, in the slow tier: one model of each block type (grouped bottleneck, Inception
# modules, depthwise separable, ShuffleNet v2's split and shuffle). Export time grows with the
# weights (about 5 s per million parameters here), and the other models differ from these
# only in how often a block repeats or, SE-ResNet's plain bottleneck, in a convolution's
# `groups`: they run with `pytest -m exhaustive` (some 45 minutes). SE-VGG is left to the
# default tier (32x32): at 224 its files are 0.5 GB (TFLite, ONNX) and 1 GB (SavedModel) of
# plain convolutions.
FULL_SIZE = ["se_resnext50", "se_inception_v3", "se_mobilenet", "se_shufflenet_v2"]
FULL_SIZE_CASES = [
    pytest.param(name, marks=pytest.mark.slow if name in FULL_SIZE else pytest.mark.exhaustive)
    for name in applications.list_models()
    if not name.startswith("se_vgg")
]


def test_tier_lists_name_registered_models():
    # A renamed or removed model fails here instead of silently leaving a tier.
    assert set(SMALL) | set(FULL_SIZE) <= set(applications.list_models())


@pytest.mark.parametrize("name", FULL_SIZE_CASES)
def test_every_model_exports_at_full_size(name, tmp_path):
    model = small_model(name, classes=1000)
    check_every_format(model, str(tmp_path))
    # ... and survives a .keras round trip.
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    x = images(model, n=2)
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_onnx_grouped_convolutions_batch_and_opset(tmp_path):
    import onnx

    model = small_model("se_resnext50", 64)
    path = str(tmp_path / "resnext.onnx")
    report = export.export_model(model, path, "onnx", opset=13)
    assert onnx.load(path).opset_import[0].version == 13
    check_onnx_graph(path, model)
    x = images(model, n=5)  # another batch size than the verification batch
    expected = model.predict(x, verbose=0)
    assert np.abs(run_onnx(path, x) - expected).max() <= FLOAT_TOLERANCE * np.abs(expected).max()
    assert report.operators["Conv"] == 53
    # The trace-only switches leave the model as Keras runs it.
    assert all(
        "convolution_op" not in vars(layer) and "call" not in vars(layer) for layer in model.layers
    )


@pytest.fixture(scope="module")
def shufflenet():
    return small_model("se_shufflenet", 64, seed=3)


@pytest.fixture(scope="module")
def shufflenet_float_size(shufflenet, tmp_path_factory):
    """The size of its float32 TFLite file, made once for both quantized cases."""
    return report_size_float(shufflenet, tmp_path_factory.mktemp("float"))


@pytest.mark.parametrize("quantize, tolerance", [("float16", 2e-3), ("dynamic", 2e-2)])
def test_tflite_quantized_weights_stay_close(
    shufflenet, shufflenet_float_size, tmp_path, quantize, tolerance
):
    path = str(tmp_path / f"{quantize}.tflite")
    report = export.export_model(shufflenet, path, "tflite", quantize=quantize)
    x = images(shufflenet, n=4, seed=7)
    expected = shufflenet.predict(x, verbose=0)
    difference = np.abs(run_tflite(path, x) - expected).max() / np.abs(expected).max()
    assert difference <= tolerance, difference
    assert set(report.operators) <= builtin_operators()
    assert os.path.getsize(path) < 0.6 * shufflenet_float_size


def report_size_float(model, folder):
    return export.export_model(
        model, os.path.join(folder, "float.tflite"), "tflite", verify=False
    ).size_bytes


def test_tflite_full_integer(shufflenet, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    data = images(shufflenet, n=32, seed=11)
    path = str(tmp_path / "int8.tflite")
    report = export.export_model(
        shufflenet, path, "tflite", quantize="int8", representative_data=data
    )
    runner = Interpreter(model_path=path)
    assert runner.get_input_details()[0]["dtype"] == np.int8
    assert runner.get_output_details()[0]["dtype"] == np.int8
    assert set(report.operators) <= builtin_operators() and "DEQUANTIZE" not in report.operators
    assert report.max_difference <= export.TOLERANCES["int8"] * report.output_scale


def test_onnx_full_integer(tmp_path):
    import onnx

    model = small_model("se_mobilenet_v2", 32)
    data = images(model, n=32, seed=11)
    path = str(tmp_path / "int8.onnx")
    report = export.export_model(model, path, "onnx", quantize="int8", representative_data=data)
    graph = onnx.load(path).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= sum(isinstance(l, keras.layers.Conv2D) for l in model.layers)
    assert report.operators["QuantizeLinear"] > 0 and report.quantize == "int8"
    x = images(model, n=4, seed=7)
    expected = model.predict(x, verbose=0)
    difference = np.abs(run_onnx(path, x) - expected).max()
    assert 1e-3 < difference <= export.TOLERANCES["int8"] * max(1, np.abs(expected).max())


def test_fixed_batch_tflite_runs_larger_batches_in_chunks(tmp_path):
    model = small_model("se_mobilenet_v2", 64)
    path = str(tmp_path / "b2.tflite")
    report = export.export_model(model, path, "tflite", batch_size=2)
    runner = export.tflite.interpreter(path)
    assert list(runner.get_input_details()[0]["shape_signature"]) == [2, 64, 64, 3]
    x = images(model, n=5)  # two full chunks and a padded one
    expected = model.predict(x, verbose=0)
    difference = np.abs(export.tflite.predict(runner, x) - expected).max()
    assert difference <= FLOAT_TOLERANCE * np.abs(expected).max()
    assert report.batch_size == 2


def test_failed_verification_leaves_nothing(tmp_path, monkeypatch):
    model = small_model("se_resnet18", 32)
    path = tmp_path / "model.tflite"
    monkeypatch.setitem(export.TOLERANCES, None, 0.0)
    with pytest.raises(export.ExportError, match="nothing was written"):
        export.export_model(model, path, "tflite", verification_data=images(model) * 50)
    assert os.listdir(tmp_path) == []


def test_openvino_bf16_is_verified_recorded_and_sends_no_telemetry(tmp_path, monkeypatch):
    if "BF16" not in export.openvino.cpu_capabilities():
        pytest.skip("this CPU has no bfloat16 instructions")
    from openvino_telemetry.utils import sender

    sent = []  # OpenVINO's converter reports usage unless opted out; ours must not
    monkeypatch.setattr(sender.TelemetrySender, "send", lambda self, *message: sent.append(1))
    model = small_model("se_resnet18", 32)
    path = str(tmp_path / "bf16.xml")
    report = export.export_model(model, path, "openvino", precision="bf16")
    assert sent == []
    assert report.precision == "bf16" and report.tolerance == export.TOLERANCES["bf16"]
    assert export.openvino.recorded_precision(path) == "bf16"
    assert "openvino (bf16)" in str(report)
    x = images(model, n=5)
    expected = model.predict(x, verbose=0)
    scale = np.abs(expected).max()
    # `load` runs it at the recorded bf16: not float32's result, but within bf16's tolerance.
    actual = export.openvino.predict(export.openvino.load(path), x)
    assert FLOAT_TOLERANCE * scale < np.abs(actual - expected).max() <= BF16_TOLERANCE * scale
    assert np.array_equal(actual, run_openvino(path, x, "bf16"))
    assert np.abs(run_openvino(path, x, "f32") - expected).max() <= FLOAT_TOLERANCE * scale


def test_openvino_bf16_on_a_cpu_without_it_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(export.openvino, "cpu_capabilities", lambda: ("FP32", "INT8"))
    model = small_model("se_resnet18", 32)
    with pytest.raises(ValueError, match="precision='f32' is what runs here.*precision='bf16'"):
        export.export_model(model, tmp_path / "m.xml", "openvino", precision="bf16")
    assert os.listdir(tmp_path) == []


def test_failed_openvino_verification_leaves_neither_file(tmp_path, monkeypatch):
    model = small_model("se_resnet18", 32)
    monkeypatch.setitem(export.TOLERANCES, None, 0.0)
    with pytest.raises(export.ExportError, match="nothing was written"):
        export.export_model(model, tmp_path / "m.xml", "openvino")
    assert os.listdir(tmp_path) == []


def test_an_existing_openvino_weights_file_is_kept(tmp_path):
    (tmp_path / "m.bin").write_text("mine")
    with pytest.raises(FileExistsError, match="m.bin exists"):
        export.export_model(small_model("se_resnet18", 32), tmp_path / "m.xml", "openvino")
    assert os.listdir(tmp_path) == ["m.bin"]


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    model = small_model("se_resnet18", 32)
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.export_model(model, folder, "saved_model")
    assert os.listdir(folder) == ["keep.txt"]
    export.export_model(model, folder, "saved_model", overwrite=True)
    assert "saved_model.pb" in os.listdir(folder) and "keep.txt" not in os.listdir(folder)
    assert not glob.glob(str(tmp_path / ".partial-*"))


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"format": "pdf"}, "format"),
        ({"format": "onnx", "quantize": "float16"}, "quantize='float16' with format='onnx'"),
        ({"format": "tflite", "quantize": "int4"}, "quantize"),
        ({"format": "tflite", "quantize": "int8"}, "representative_data=None"),
        (
            {"format": "tflite", "quantize": "int8", "representative_data": np.zeros((2, 8, 8, 3))},
            "shape \\(2, 8, 8, 3\\)",
        ),
        ({"format": "tflite", "batch_size": 0}, "batch_size=0"),
        ({"format": "onnx", "opset": 7}, "opset=7"),
        ({"format": "openvino", "precision": "fp16"}, "precision='fp16'"),
        ({"format": "onnx", "precision": "bf16"}, "precision='bf16' with format='onnx'"),
        ({"format": "openvino", "quantize": "int8"}, "quantize='int8'"),
        ({"format": "openvino"}, "an .xml file.*path='.*out'"),
    ],
)
def test_bad_arguments_are_named(tmp_path, arguments, message):
    model = small_model("se_resnet18", 32)
    with pytest.raises(ValueError, match=message):
        export.export_model(model, tmp_path / "out", **arguments)
    assert os.listdir(tmp_path) == []


# --- se-keras export -----------------------------------------------------------------------


def test_cli_exports_each_format(tmp_path, capsys):
    common = ["--input-size", "32", "--classes", "10"]
    for format, name in [
        ("onnx", "m.onnx"),
        ("tflite", "m.tflite"),
        ("saved_model", "m"),
        ("openvino", "m.xml"),
    ]:
        output = str(tmp_path / name)
        assert cli.main(["export", "se_resnet18", "--format", format, "-o", output, *common]) == 0
        out = capsys.readouterr().out
        assert f"-> {output}: {format}" in out and "max |difference| against Keras" in out
        assert len(out.splitlines()) == 1 and os.path.exists(output)
    # An existing output is refused (one line, exit 1) and left alone, replaced with --force.
    before = os.path.getmtime(tmp_path / "m.onnx")
    assert (
        cli.main(
            ["export", "se_resnet18", "--format", "onnx", "-o", str(tmp_path / "m.onnx"), *common]
        )
        == 1
    )
    assert "exists; add --force" in capsys.readouterr().err
    assert os.path.getmtime(tmp_path / "m.onnx") == before


def test_the_installed_command_exports_without_native_chatter(tmp_path):
    # LiteRT announces its XNNPACK delegate on the native stderr, once per process.
    command = os.path.join(os.path.dirname(sys.executable), "se-keras")
    output = str(tmp_path / "m.tflite")
    argv = ["export", "se_resnet18", "--format", "tflite", "-o", output, "--input-size", "32"]
    result = subprocess.run([command, *argv, "--classes", "10"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.startswith(f"se_resnet18 (random weights) -> {output}: tflite")


def test_cli_int8_says_how_it_calibrated(tmp_path, capsys):
    output = str(tmp_path / "q.tflite")
    assert (
        cli.main(
            [
                "export",
                "se_shufflenet",
                "--format",
                "tflite",
                "-o",
                output,
                "--quantize",
                "int8",
                "--input-size",
                "32",  # the message does not depend on the size; calibration costs 4x at 64
                "--classes",
                "10",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "int8 calibration: 200 images of the bundled digits dataset" in out


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["se_resnet9", "--format", "onnx"], "Unknown model name 'se_resnet9'"),
        (["se_resnet18", "--format", "pdf"], "invalid choice: 'pdf'"),
        (
            ["se_resnet18", "--format", "onnx", "--weights", "missing.weights.h5"],
            "missing.weights.h5",
        ),
        (["se_resnet18", "--format", "tflite", "--batch-size", "0"], "'0'"),
        (
            ["se_resnet18", "--format", "onnx", "--quantize", "dynamic"],
            "--quantize dynamic with --format onnx",
        ),
        (["se_resnet18", "--format", "onnx", "--precision", "bf16"], "--precision bf16 with"),
        (["se_resnet18", "--format", "openvino", "--precision", "f16"], "invalid choice: 'f16'"),
        (["se_resnet18", "--format", "openvino"], "an .xml file"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, capsys, arguments, message):
    output = str(tmp_path / "out")
    code = cli_exit_code(["export", *arguments, "-o", output, "--input-size", "32"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("se-keras export: error:"), err
    assert message in err[0] and not os.path.exists(output)


def test_cli_weights_that_do_not_fit(tmp_path, capsys):
    weights = str(tmp_path / "other.weights.h5")
    applications.get_model(
        "se_resnet34", weights=None, input_shape=(32, 32, 3), classes=10
    ).save_weights(weights)
    code = cli_exit_code(
        [
            "export",
            "se_resnet18",
            "--format",
            "onnx",
            "-o",
            str(tmp_path / "o"),
            "--weights",
            weights,
            "--input-size",
            "32",
            "--classes",
            "10",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("se-keras export: error:"), err


def cli_exit_code(argv):
    try:
        return cli.main(argv)
    except SystemExit as exit:  # argparse's usage errors
        return exit.code


@pytest.fixture(scope="module")
def digits_model():
    return train_digits_model()


# Max probability differences; dynamic-range at the exporter's own tolerance
# (export.TOLERANCES): three trainings of the same seed measured 2.1e-2 to 3.0e-2.
@pytest.mark.slow
@pytest.mark.parametrize(
    "quantize, max_difference, min_agreement",
    [
        (None, 1e-5, 1.0),
        ("float16", 2e-3, 0.99),
        ("dynamic", 5e-2, 0.98),
        ("int8", 0.2, 0.98),
    ],
)
def test_tflite_on_held_out_digits(digits_model, tmp_path, quantize, max_difference, min_agreement):
    model, calibration, x, labels = digits_model
    expected = model.predict(x, verbose=0)
    assert np.mean(expected.argmax(-1) == labels) >= 0.9  # a trained model, or nothing is shown
    path = str(tmp_path / "digits.tflite")
    export.export_model(model, path, "tflite", quantize=quantize, representative_data=calibration)
    runner = export.tflite.interpreter(path)
    actual = export.tflite.predict(runner, x)  # probabilities (softmax) for all 360 images
    agreement = np.mean(actual.argmax(-1) == expected.argmax(-1))
    difference = np.abs(actual - expected).max()
    print(
        f"{quantize or 'float32'}: top-1 agreement {agreement:.4f}, max |probability "
        f"difference| {difference:.2e}, accuracy {np.mean(actual.argmax(-1) == labels):.4f} "
        f"(Keras {np.mean(expected.argmax(-1) == labels):.4f})"
    )
    assert agreement >= min_agreement and difference <= max_difference


# OpenVINO bf16 and ONNX int8 on the same held-out digits (docs/export.md: bf16 agreed on all
# 360 with a max probability difference of 1.7e-2, ONNX int8 on all 360 with 8.6e-2).
@pytest.mark.slow
@pytest.mark.parametrize(
    "format, options, max_difference, min_agreement",
    [
        ("openvino", {"precision": "bf16"}, 5e-2, 0.99),
        ("onnx", {"quantize": "int8"}, 0.2, 0.98),
    ],
)
def test_bf16_and_int8_on_held_out_digits(
    digits_model, tmp_path, format, options, max_difference, min_agreement
):
    if format == "openvino" and "BF16" not in export.openvino.cpu_capabilities():
        pytest.skip("this CPU has no bfloat16 instructions")
    model, calibration, x, _ = digits_model
    expected = model.predict(x, verbose=0)
    path = str(tmp_path / f"digits{SUFFIX[format]}")
    export.export_model(model, path, format, representative_data=calibration, **options)
    actual = RUNNERS[format](path, x, "bf16") if format == "openvino" else run_onnx(path, x)
    agreement = np.mean(actual.argmax(-1) == expected.argmax(-1))
    difference = np.abs(actual - expected).max()
    print(f"{format} {options}: top-1 agreement {agreement:.4f}, max |difference| {difference:.2e}")
    assert agreement >= min_agreement and 1e-4 < difference <= max_difference
