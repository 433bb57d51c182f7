"""The export trace's SE rewrite (se_keras/export/tracing.py): equal to the Keras layer's own
computation, applied only where it is exact, and gone after the trace."""

import keras
import numpy as np
import pytest

from se_keras.benchmark.realistic import randomize_batch_norm
from se_keras.export import tracing
from se_keras.layers import SqueezeExcite


def bottleneck(expand=None, se_options=None, between=None):
    """A bottleneck unit with SE after its 1x1 expansion and BatchNorm, as in SE-ResNet-50:
    `expand` replaces that convolution, `between` adds a layer before SE."""
    inputs = keras.Input((12, 12, 16))
    x = keras.layers.Conv2D(4, 1, use_bias=False, name="reduce")(inputs)
    x = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(x))
    x = (expand or keras.layers.Conv2D(16, 1, name="expand"))(x)
    x = keras.layers.BatchNormalization(name="expand_bn")(x)
    if between is not None:
        x = between(x)
    x = SqueezeExcite(ratio=4, name="se", **(se_options or {}))(x)
    if x.shape[1:] == inputs.shape[1:]:
        x = keras.layers.Add()([x, inputs])
    outputs = keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(x))
    keras.utils.set_random_seed(0)
    model = keras.Model(inputs, outputs)
    randomize_batch_norm(model)
    for layer in model.layers:
        if isinstance(layer, SqueezeExcite) and layer.use_bias:  # not the zeros default
            layer.reduce_bias.assign(np.random.default_rng(1).normal(0, 0.5, layer.hidden))
    return model


def images(n=3):
    return np.random.default_rng(2).standard_normal((n, 12, 12, 16)).astype("float32")


def rewritten(model):
    return "excitation" in vars(model.get_layer("se"))


@pytest.mark.parametrize("se_options", [{}, {"use_bias": False, "gate": "hard_sigmoid"}])
def test_rewrite_computes_the_layers_own_result_and_is_undone(se_options):
    model = bottleneck(se_options=se_options)
    x = images()
    expected = np.asarray(model(x))
    with tracing.pooled_expand_inputs(model):
        assert rewritten(model)
        actual = np.asarray(model(x))
    difference = np.abs(actual - expected).max()
    assert difference <= 1e-5 * np.abs(expected).max(), difference
    # Both layers have their class's methods back.
    assert not rewritten(model) and "call" not in vars(model.get_layer("expand"))
    assert np.array_equal(np.asarray(model(x)), expected)


@pytest.mark.parametrize(
    "case",
    [
        {"between": keras.layers.Activation("relu")},  # SE after a ReLU (SE-ResNet-18/34)
        {"se_options": {"pooling": "max"}},  # the mean commutes with the affine maps; max not
        {"se_options": {"dtype": "mixed_float16"}},  # float16 gate, float32 BatchNorm moments
        {"expand": keras.layers.Conv2D(16, 3, padding="same")},
        {"expand": keras.layers.Conv2D(16, 1, strides=2)},
        {"expand": keras.layers.Conv2D(16, 1, activation="relu")},
        {"expand": keras.layers.Conv2D(16, 1, groups=4)},
    ],
    ids=["after_relu", "max_squeeze", "float16", "3x3", "strided", "activation", "grouped"],
)
def test_rewrite_applies_only_where_the_mean_passes_through_exactly(case):
    model = bottleneck(**case)
    with tracing.pooled_expand_inputs(model):
        assert not rewritten(model)


def squeezed_widths(path):
    """The channel count of what each ReduceMean of the OpenVINO IR at `path` averages."""
    import openvino

    graph = openvino.Core().read_model(path)
    widths = []
    for op in graph.get_ordered_ops():
        if op.get_type_name() == "ReduceMean":
            shape = op.input(0).get_partial_shape()
            axes = op.input_value(1).get_node().get_vector() % shape.rank.get_length()
            (width,) = [shape[i].get_length() for i in range(1, len(shape)) if i not in axes]
            widths.append(width)
    return widths


def test_openvino_export_squeezes_the_expand_input_and_verifies(tmp_path):
    from se_keras import export

    model = bottleneck()
    path = str(tmp_path / "unit.xml")
    report = export.export_model(model, path, "openvino", verification_data=images())
    assert report.max_difference <= 1e-4 * report.output_scale
    # SE's mean reads the 4-channel input of the expansion, not its 16-channel output (the
    # other ReduceMean is the head's global average pool).
    assert sorted(squeezed_widths(path)) == [4, 16]
    assert not rewritten(model)


def test_onnx_export_squeezes_the_expand_input_and_verifies(tmp_path):
    import onnx

    from se_keras import export

    model = bottleneck()
    path = str(tmp_path / "unit.onnx")
    report = export.export_model(model, path, "onnx", verification_data=images())
    assert report.max_difference <= 1e-4 * report.output_scale
    graph = onnx.shape_inference.infer_shapes(onnx.load(path)).graph
    channels = {v.name: v.type.tensor_type.shape.dim[1].dim_value for v in graph.value_info}
    pooled = [channels[n.input[0]] for n in graph.node if n.op_type == "GlobalAveragePool"]
    assert sorted(pooled) == [4, 16]  # SE's squeeze (NCHW), then the head's pool
    assert not rewritten(model)
