"""SE-ResNet-50 against keras' ResNet50 on a GPU, JAX backend, bf16 mixed precision.

    python benchmarks/gpu_jax.py                      # batch 256 (H100 / H200), 224x224
    python benchmarks/gpu_jax.py --batch-size 128 --output docs/benchmarks_gpu.md

Inference (jitted forward pass) and training (jitted SGD step: forward, backward, update)
throughput, interleaved over rounds with medians, and SE / base as the median of per-round
ratios. Where timm is installed, its seresnet50 and resnet50 run in the same rounds with
torch.compile, channels_last and bf16 autocast, for comparison (the paper: 209 ms against
190 ms per training batch of 256 on 8 Titan X, ratio 1.10). Inputs stay on the device; each
timed call runs `--steps` batches and waits for the device.

On a CPU it runs too (small sizes, for a check): `--batch-size 2 --image-size 64 --steps 1`.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
# JAX takes most of the GPU's memory by default; leave room for PyTorch in the same process.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax
import keras
import numpy as np

import se_keras
from se_keras.benchmark import report, timing


def keras_tasks(model, batch_size, size, steps):
    """(inference, training) callables for a Keras model on the JAX backend."""
    rng = np.random.default_rng(0)
    x = jax.device_put(rng.standard_normal((batch_size, size, size, 3), dtype=np.float32))
    y = jax.device_put(rng.integers(0, 1000, batch_size))
    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    optimizer.build(model.trainable_variables)
    state = [trainable, frozen, [v.value for v in optimizer.variables]]
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @jax.jit
    def forward(trainable, frozen, x):
        return model.stateless_call(trainable, frozen, x, training=False)[0]

    def loss(trainable, frozen, x, y):
        logits, frozen = model.stateless_call(trainable, frozen, x, training=True)
        return loss_fn(y, logits), frozen

    @jax.jit
    def train_step(trainable, frozen, optimizer_vars, x, y):
        (_, frozen), grads = jax.value_and_grad(loss, has_aux=True)(trainable, frozen, x, y)
        trainable, optimizer_vars = optimizer.stateless_apply(optimizer_vars, grads, trainable)
        return trainable, frozen, optimizer_vars

    def infer():
        for _ in range(steps):
            out = forward(state[0], state[1], x)
        out.block_until_ready()

    def train():
        for _ in range(steps):
            state[:] = train_step(*state, x, y)
        jax.block_until_ready(state[0])

    return infer, train


def timm_tasks(name, batch_size, size, steps):
    import timm
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = timm.create_model(name, num_classes=1000).to(device, memory_format=torch.channels_last)
    x = torch.randn(batch_size, 3, size, size, device=device).contiguous(
        memory_format=torch.channels_last
    )
    y = torch.randint(0, 1000, (batch_size,), device=device)
    compiled = torch.compile(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def infer():
        model.eval()
        with torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16):
            for _ in range(steps):
                compiled(x)
        sync()

    def train():
        model.train()
        for _ in range(steps):
            with torch.autocast(device, dtype=torch.bfloat16):
                loss = torch.nn.functional.cross_entropy(compiled(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        sync()

    return infer, train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10, help="batches per timed call")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-timm", action="store_true", help="skip timm even if installed")
    parser.add_argument("--output", default=None, help="Markdown file for the table")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if keras.backend.backend() != "jax":
        sys.exit("run with KERAS_BACKEND=jax (or unset)")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    shape = (args.image_size, args.image_size, 3)
    pairs = {
        "keras": (
            se_keras.applications.SEResNet50(weights=None, input_shape=shape),
            keras.applications.ResNet50(weights=None, input_shape=shape),
        ),
    }
    tasks = {}
    for kind, (se, base) in pairs.items():
        for label, model in (("SE-ResNet-50", se), ("ResNet50", base)):
            infer, train = keras_tasks(model, args.batch_size, args.image_size, args.steps)
            tasks[f"{kind} {label} inference"], tasks[f"{kind} {label} training"] = infer, train
    if not args.no_timm:
        try:
            for label, name in (("SE-ResNet-50", "seresnet50"), ("ResNet50", "resnet50")):
                infer, train = timm_tasks(name, args.batch_size, args.image_size, args.steps)
                tasks[f"timm {label} inference"], tasks[f"timm {label} training"] = infer, train
        except ImportError:
            print("timm is not installed: Keras only", file=sys.stderr)
    # Pairs next to each other (SE then base, per framework and mode) for paired ratios.
    order = sorted(tasks, key=lambda k: (k.split()[0], k.split()[-1], "ResNet50" in k))
    samples = timing.interleave({k: tasks[k] for k in order}, args.rounds, warmup=2)
    print_report(samples, args)


def print_report(samples, args):
    images = args.batch_size * args.steps
    rows = [("framework", "mode", "SE-ResNet-50 images/s", "ResNet50 images/s", "SE / base time")]
    for key in samples:
        framework, label, mode = key.split()[0], key.split()[1], key.split()[-1]
        if label != "SE-ResNet-50":
            continue
        se, base = samples[key], samples[f"{framework} ResNet50 {mode}"]
        rows.append(
            (
                framework,
                mode,
                f"{images / timing.median(se):.0f}",
                f"{images / timing.median(base):.0f}",
                f"{timing.paired_ratio(se, base):.3f}",
            )
        )
    device = jax.devices()[0]
    header = (
        f"{device.device_kind} ({device.platform}), JAX backend, mixed_bfloat16, batch "
        f"{args.batch_size}, {args.image_size}x{args.image_size}, medians of {args.rounds} "
        f"interleaved rounds of {args.steps} steps"
    )
    table = report.markdown(rows)
    print(header)
    print(table)
    if args.output:
        with open(args.output, "w") as file:
            file.write(
                f"# GPU benchmark\n\nGenerated by `python benchmarks/gpu_jax.py`. "
                f"{header}.\n\n{table}\n"
            )
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"header": header, "seconds": samples}, file, indent=1)


if __name__ == "__main__":
    main()
