"""Helpers shared by the tests (no test imports another test file): random but realistic
weights, the authors' reference models, the export runtimes' own APIs, and a loopback HTTP
server for downloads."""

import http.server
import os
import threading

import numpy as np

from se_keras.convert import reference

# Trainable parameter counts of the reference models (torch `parameters()`), DESIGN.md.
REFERENCE_PARAMS = {
    "se_resnet50": 28_088_024,
    "se_resnet101": 49_326_872,
    "se_resnet152": 66_821_848,
    "se_resnext50_32x4d": 27_559_896,
    "se_resnext101_32x4d": 48_955_416,
    "senet154": 115_088_984,
}
# Our registry name for each reference builder.
OURS = {ref: ours for ours, ref in reference.REFERENCE_BUILDERS.items()}

randomize = reference.randomize
reference_outputs = reference.run


def builtin_operators():
    from tensorflow.lite.python import schema_py_generated as schema

    names = {name for name in vars(schema.BuiltinOperator) if name.isupper()}
    return names - {"CUSTOM", "DELEGATE", "PLACEHOLDER_FOR_GREATER_OP_CODES"}


def basic_block_reference(senet):
    """SE-ResNet-18/34 as in timm's legacy senet.py (the only released weights): the
    authors' SENet skeleton with a basic unit whose SE follows a ReLU after the second BN."""
    from torch import nn

    class SEResNetBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, groups, reduction, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, groups=groups, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU()
            self.se_module = senet.SEModule(planes, reduction=reduction)
            self.downsample = downsample

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            shortcut = x if self.downsample is None else self.downsample(x)
            return self.relu(self.se_module(out) + shortcut)

    def build(layers):
        return senet.SENet(
            SEResNetBlock,
            layers,
            groups=1,
            reduction=16,
            dropout_p=None,
            inplanes=64,
            input_3x3=False,
            downsample_kernel_size=1,
            downsample_padding=0,
        )

    return build


def images(model, n=3, seed=1):
    shape = (n, *model.inputs[0].shape[1:])
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


def run_saved_model(path, x):
    import tensorflow as tf

    signature = tf.saved_model.load(path).signatures["serving_default"]
    assert [spec.name for spec in signature.structured_input_signature[1].values()] == ["images"]
    return next(iter(signature(images=tf.constant(x)).values())).numpy()


def run_onnx(path, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {"images": x})[0]


def run_tflite(path, x):
    """One example at a time (the float files have batch 1 or a dynamic batch)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path)
    runner.allocate_tensors()
    inputs, outputs = runner.get_input_details()[0], runner.get_output_details()[0]
    results = []
    for image in x:
        runner.set_tensor(inputs["index"], image[None])
        runner.invoke()
        results.append(runner.get_tensor(outputs["index"])[0])
    return np.stack(results)


def run_openvino(path, x, precision="f32"):
    """OpenVINO's CPU runtime at `precision`, asked for explicitly: on a CPU with bfloat16
    instructions its default is bf16."""
    import openvino

    compiled = openvino.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": precision})
    assert [port.get_any_name() for port in compiled.inputs] == ["images"]
    return compiled(x)[compiled.output(0)]


RUNNERS = {
    "saved_model": run_saved_model,
    "onnx": run_onnx,
    "tflite": run_tflite,
    "openvino": run_openvino,
}
SUFFIX = {"saved_model": "", "onnx": ".onnx", "tflite": ".tflite", "openvino": ".xml"}


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the test's directory; /truncated/<name> promises more bytes than it sends."""

    def do_GET(self):
        if self.path.startswith("/truncated/"):
            body = open(os.path.join(self.directory, self.path.split("/")[-1]), "rb").read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            return
        super().do_GET()

    def log_message(self, *args):
        pass


class Server:
    """`directory` over HTTP on 127.0.0.1 (a port of its own), standing in for the weights'
    download hosts: `url` is its address."""

    def __init__(self, directory):
        handler = lambda *a, **k: _Handler(*a, directory=str(directory), **k)  # noqa: E731
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
