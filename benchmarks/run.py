"""Regenerate docs/benchmarks.md, docs/benchmarks.png and docs/benchmarks.json.

    python benchmarks/run.py                 # the default set (see DEFAULT_MODELS)
    python benchmarks/run.py --models se_resnet50 se_resnext50 se_mobilenet_v2 ...
    python benchmarks/run.py --quick         # fewer rounds, no training or memory (a check)

Three measurements, each a separate interleaved run on the TensorFlow backend, CPU:
  1. the headline: SE-ResNet-50 and keras' ResNet50 at batch 8, 224x224 float32, in every
     runtime, with the authors' PyTorch SE-ResNet-50 (many rounds);
  2. SE-MobileNet's TFLite float32 against full-integer int8 at batch 1, with keras'
     MobileNet in the same rounds (many rounds);
  3. the table: each model next to its base network at batch 1 and 32 in every runtime;
     for SE-ResNet-50 and SE-MobileNet also an XLA training step and peak memory.
Exported files are kept in --cache-dir (default ~/.keras/models/se_keras/benchmark) and
reused while the network, the layer/builder/exporter sources, TensorFlow and Keras stay the
same; the first run spends several more minutes exporting them.
"""

import argparse
import datetime
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from se_keras.benchmark import Settings, isolated, report
from se_keras.benchmark.suite import merge
from se_keras.weights.download import cache_dir

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs")
DEFAULT_MODELS = ("se_resnet50", "se_resnext50", "se_mobilenet", "se_mobilenet_v2")
DETAILED = ("se_resnet50", "se_mobilenet")  # also a training step and peak memory
TABLE_RUNTIMES = ("keras", "xla", "tflite", "tflite-int8", "onnx", "openvino", "openvino-bf16")
HEADLINE_RUNTIMES = ("keras", "xla", "tflite", "onnx", "openvino", "openvino-bf16")
OURS = ("xla", "tflite", "onnx", "openvino")  # candidates for "our fastest float32 CPU runtime"
PAPER_CPU_RATIO = 167 / 164  # SE-ResNet-50 / ResNet-50, one 224 image on a CPU (paper, sec. 4)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_MODELS),
        help="the table's models (default: %(default)s)",
    )
    parser.add_argument(
        "--detailed",
        nargs="+",
        default=list(DETAILED),
        help="those of --models that also get a training step and peak memory",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the table")
    parser.add_argument("--headline-rounds", type=int, default=11)
    parser.add_argument("--train-batch-size", type=int, default=8)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 rounds everywhere, no training, no memory (a check of the script)",
    )
    parser.add_argument("--cache-dir", default=os.path.join(cache_dir(), "benchmark"))
    parser.add_argument("--output-dir", default=DOCS)
    args = parser.parse_args(argv)
    if args.quick:
        args.headline_rounds, args.detailed = 3, []
    start = time.time()
    common = {"cache_dir": args.cache_dir}
    # Each part in its own process (isolated.run): a part's memory goes when it ends.
    headline = isolated.run(
        Settings(
            models=("se_resnet50",),
            runtimes=HEADLINE_RUNTIMES,
            batch_sizes=(8,),
            rounds=args.headline_rounds,
            **common,
        ),
        start,
    )
    # keras' MobileNet in the same rounds: its int8 speed-up is what this CPU gives without SE.
    mobile = isolated.run(
        Settings(
            models=("se_mobilenet",),
            runtimes=("tflite", "tflite-int8"),
            batch_sizes=(1,),
            rounds=3 * args.headline_rounds,
            **common,
        ),
        start,
    )
    table_settings = {
        "runtimes": TABLE_RUNTIMES,
        "batch_sizes": (1, 32),
        "rounds": args.rounds,
        **common,
    }
    tables = []
    for model in args.models:
        extra = (
            {"train_batch_size": args.train_batch_size, "memory": True, "memory_batch_size": 1}
            if model in args.detailed
            else {}
        )
        tables.append(isolated.run(Settings(models=(model,), **table_settings, **extra), start))
    table = merge(*tables)
    minutes = (time.time() - start) / 60
    claims = headline_claims(headline, mobile)
    os.makedirs(args.output_dir, exist_ok=True)
    report.plot(table, os.path.join(args.output_dir, "benchmarks.png"))
    report.write_json(
        {"headline": headline, "mobile": mobile, "table": table},
        os.path.join(args.output_dir, "benchmarks.json"),
    )
    with open(os.path.join(args.output_dir, "benchmarks.md"), "w") as file:
        file.write(markdown(headline, mobile, table, claims, minutes))
    for claim in claims:
        print(f"{claim[0]}: {claim[1]} (target {claim[2]})")
    print(f"wrote {os.path.join(args.output_dir, 'benchmarks.md')} in {minutes:.0f} min")


def headline_claims(headline, mobile):
    """(what, measured, target, met) for the three figures the project promises."""
    model, se, base = "se_resnet50", "se_resnet50", "ResNet50 (keras.applications)"
    xla = report.compare(headline, model, (se, "xla"), (base, "xla"), 8)
    medians = {rt: report.median(headline, model, se, rt, 8) for rt in OURS}
    fastest = min((rt for rt in OURS if medians[rt]), key=medians.get)
    versus_torch = report.compare(headline, model, (se, fastest), (se, "torch"), 8)
    speedup = int8_speedup(mobile, "se_mobilenet")
    return [
        (
            "SE-ResNet-50 / ResNet50 time under XLA, batch 8",
            _fmt(xla),
            f"<= 1.10 (paper, CPU: {PAPER_CPU_RATIO:.3f})",
            xla is not None and xla <= 1.10,
        ),
        (
            f"our fastest CPU runtime for SE-ResNet-50 ({fastest}) / the authors' PyTorch model, "
            "batch 8",
            _fmt(versus_torch),
            "<= 1.0",
            versus_torch is not None and versus_torch <= 1,
        ),
        (
            "SE-MobileNet TFLite float32 / full-integer int8 time, batch 1 (int8 speed-up)",
            _fmt(speedup),
            ">= 2",
            speedup is not None and speedup >= 2,
        ),
    ]


def int8_speedup(mobile, network):
    """TFLite float32 time over full-integer time at batch 1, median of per-round ratios."""
    return report.compare(mobile, "se_mobilenet", (network, "tflite"), (network, "tflite-int8"), 1)


def _fmt(value):
    return "not measured" if value is None else f"{value:.3f}"


def markdown(headline, mobile, table, claims, minutes):
    today = datetime.date.today().isoformat()
    machine = headline["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python benchmarks/run.py` on {today} in {minutes:.0f} minutes "
        f"(TensorFlow backend, CPU: {machine['cpu']}, {machine['cores']} cores, shared with "
        f"other jobs; {versions}). The same measurements for any model: "
        "`se-keras benchmark MODEL --compare`.",
        "",
        "## The three figures",
        "",
        "| figure | measured | target | met |",
        "|---|---|---|---|",
        *(
            f"| {what} | {value} | {target} | {'yes' if met else '**no**'} |"
            for what, value, target, met in claims
        ),
        "",
        "Ratios of times (below 1: the first is faster), each the median over rounds of the "
        "ratio within a round, from one interleaved run. For scale, keras.applications' "
        f"MobileNet (no SE), in the same rounds as SE-MobileNet, runs full-integer "
        f"{_fmt(int8_speedup(mobile, report.labels(mobile, 'se_mobilenet')[1]))} times as fast "
        "as float32; why int8 gains so little on this CPU is explained under \"Where SE's "
        'time goes" below.',
        "",
        "## How it is measured",
        "",
        "- Every network of a model runs in every runtime once per round, runtime by runtime "
        "with the SE network next to its base network, in reverse order on odd rounds; "
        "the tables give medians over rounds. The machine is shared, so absolute times "
        "move with its load (load average before and after each run is given); the ratios, "
        "measured under the same load, are the numbers to compare.",
        f"- Threads: {machine['threads']} for every runtime (TensorFlow intra-op threads, "
        "LiteRT `num_threads`, onnxruntime `intra_op_num_threads`, OpenVINO "
        "`INFERENCE_NUM_THREADS`, `torch.set_num_threads`). "
        f"PyTorch runs with `OMP_WAIT_POLICY={machine['torch_omp_wait_policy']}`: with its "
        "default active waiting, its OpenMP threads spin while the partner thread is "
        "descheduled, which on this shared machine made it about three times slower.",
        "- Runtimes: " + "; ".join(f"`{name}`: {text}" for name, text in _runtime_notes()),
        "- Inputs: seeded random float32 images; random (seeded) weights, which do not change "
        "the time. int8 files take int8 input, quantized before timing.",
        "- Base networks: keras.applications' ResNet50, MobileNet and MobileNetV2; keras has "
        "no ResNeXt, so SE-ResNeXt-50 is compared with our builder at `se_ratio=None` "
        "(the same network without SE). The authors' PyTorch models (Cadene's `senet.py`) "
        "exist for SE-ResNet-50 and SE-ResNeXt-50.",
        "- Peak memory: a fresh process per network and runtime imports the runtime, notes "
        "its resident set size, loads the network, runs the batch twice; the table gives the "
        "peak resident set size (`VmHWM`) minus that baseline: weights, packed or compiled "
        "copies and activations.",
        "- Multiply-adds: `se_keras.utils.flops.count_macs` (convolutions, dense and SE "
        "layers; the paper's convention), next to the paper's figures.",
        "",
        "## SE-ResNet-50 against ResNet50 and the authors' PyTorch model (batch 8)",
        "",
        report.settings_line(headline),
        "",
        report.markdown(report.inference_table(headline, "se_resnet50")),
        "",
        "## SE-MobileNet and keras' MobileNet: TFLite float32 and int8 (batch 1)",
        "",
        report.settings_line(mobile),
        "",
        report.markdown(report.inference_table(mobile, "se_mobilenet")),
        "",
        "## Every model next to its base network",
        "",
        *(
            f"- {', '.join(part['settings']['models'])}: {report.settings_line(part)}"
            for part in table["runs"]
        ),
        "",
        "![SE / base time per runtime](benchmarks.png)",
    ]
    for model in dict.fromkeys(n["model"] for n in table["networks"]):
        lines += [
            "",
            f"### {model}",
            "",
            report.markdown(report.network_table(table, model)),
            "",
            report.markdown(report.inference_table(table, model)),
        ]
    if table["training"]:
        lines += [
            "",
            "## Training step (XLA, SGD with momentum, batch "
            f"{table['training'][0]['batch_size']})",
            "",
            report.markdown(report.training_table(table)),
        ]
    if table["memory"]:
        lines += [
            "",
            f"## Peak memory (batch {table['memory'][0]['batch_size']})",
            "",
            report.markdown(report.memory_table(table)),
        ]
    dot_product = machine.get("int8_dot_product")
    lines += [
        "",
        NOTES.format(
            dot_product="unknown" if dot_product is None else ", ".join(dot_product) or "none"
        ),
    ]
    return "\n".join(lines) + "\n"


def _runtime_notes():
    from se_keras.benchmark import RUNTIMES

    return [(name, RUNTIMES[name]) for name in (*TABLE_RUNTIMES, "torch")]


NOTES = """## Where SE's time goes

SE adds 0.26% multiply-adds, but each block adds a global pooling (one more read of the
feature map), a few tiny operators (two small matrix products, the gate) and a broadcast
multiply. What that costs depends on the runtime:

- **XLA (CPU):** the squeeze runs as a separate reduction (XLA hands it to its YNNPACK
  reduction kernel, which does not fuse the BatchNorm in front of it), so the BatchNorm
  output is written once more and read once more; the excitation's gate multiply is fused
  with the residual addition and ReLU. Formulations tried for the layer (reshape then
  reduce, a matrix product with a ones vector, keep-dims mean with 1x1 convolutions) gave
  the same or slower code.
- **TFLite (XNNPACK):** the whole network, SE included, is one XNNPACK partition (checked:
  one delegate node for SE-ResNet-50). Broadcasting the gate with `expand_dims` instead of
  one reshape was measured to split SE-MobileNet into 15 partitions, and 1x1 convolutions
  instead of fully connected layers were no faster, so the layer keeps mean, two matrix
  products and one reshape. On small inputs the cost is the count of operators: five more
  per block, each a thread-pool dispatch.
- **TFLite full integer (int8):** the int8 file is one XNNPACK partition too, SE included
  (checked against keras' MobileNet in the slow tests). What keeps int8 from 2x here is the
  CPU; int8 dot-product instructions on this machine: {dot_product}. Without them (an x86
  CPU with AVX2 only, like the AMD EPYC of these figures) XNNPACK's int8 convolutions run
  its AVX2 kernels (`qs8-qc8w-gemm ...c8__avx2`), which widen int8 to int16 and multiply-add
  pairs with `vpmaddwd`: about as many multiply-adds per instruction as its float32 FMA
  kernels, so int8 saves memory traffic and little else. keras' MobileNet gains the same
  (above), and a one-off check (an ad-hoc script, not part of this benchmark) of
  onnxruntime's int8 (`quantize_static`, uint8 activations, per-channel int8 weights) gave
  1.2x (MobileNet) and 1.3x (SE-MobileNet) over its float32 on this machine. XNNPACK picks
  dot-product kernels where the CPU has them (ARM `asimddp`/`i8mm` phones, x86 AVX-VNNI or
  AVX-512 VNNI); that is where TFLite's 2x-and-more int8 figures come from, and no such CPU
  was available to this project to measure.
- **onnxruntime:** tf2onnx cannot move its layout Transposes across a multiply by a
  non-constant, so every SE block used to scale its feature map in NHWC between two
  Transposes (26 Transpose nodes in SE-MobileNet, 33 in SE-ResNet-50); the exporter now
  traces the scale in NCHW and those Transposes cancel (one is left, at the input). The rest
  of SE's cost there is onnxruntime's own: its NCHWc convolution layout has no broadcast
  multiply, so around every SE block it reorders the feature map back to plain NCHW and
  forward again (ORT's `NchwcTransformer` handles a `Mul` only between equal shapes).
- **PyTorch:** see the note on OpenMP waiting above.

## GPU

`python benchmarks/gpu_jax.py` (JAX backend, mixed bfloat16, batch 256) times SE-ResNet-50 and
keras' ResNet50 inference and training steps on a GPU, interleaved, with timm's seresnet50 and
resnet50 (torch.compile, channels_last, bf16 autocast) in the same rounds where timm is
installed; `--output docs/benchmarks_gpu.md` writes its table. The paper's GPU figure: 209 ms
against 190 ms per training batch of 256 (ratio 1.10).
"""


if __name__ == "__main__":
    sys.exit(main())
