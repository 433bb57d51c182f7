"""Regenerate this machine kind's docs/benchmarks/<cpu>_<flags>.md (+ .json, .png) and the
index docs/benchmarks.md.

    python benchmarks/run.py                 # the default set (see DEFAULT_MODELS)
    python benchmarks/run.py --models se_resnet50 se_resnext50 se_mobilenet_v2 ...
    python benchmarks/run.py --quick         # fewer rounds, no training or memory (a check)

Three measurements, each a separate interleaved run on the TensorFlow backend, CPU:
  1. the headline: SE-ResNet-50 and keras' ResNet50 at batch 8, 224x224, in every runtime
     (float32, OpenVINO bf16), with timm's seresnet50 and resnet50 and the authors' PyTorch
     SE-ResNet-50, then timm_seresnext50_32x4d next to timm's own, each with the machine's
     float32 GEMM in the same rounds (many rounds);
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
import glob
import json
import os
import re
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
# timm's SE-ResNeXt-50, the SE network most used in PyTorch, against timm itself (the same
# architecture) in the headline's rounds.
TIMM_HEADLINE = "timm_seresnext50_32x4d"
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
    parser.add_argument(
        "--pages-from",
        metavar="JSON",
        help="no measuring: rewrite that run's page (docs/benchmarks/<kind>.json) and the "
        "index with the current report code",
    )
    args = parser.parse_args(argv)
    if args.pages_from:
        with open(args.pages_from) as file:
            recorded = json.load(file)
        runs = {part: recorded[part] for part in ("headline", "mobile", "table")}
        return write_pages(args.output_dir, runs, recorded.get("minutes"), recorded.get("date"))
    if args.quick:
        args.headline_rounds, args.detailed = 3, []
    start = time.time()
    common = {"cache_dir": args.cache_dir}
    # Each part in its own process (isolated.run): a part's memory goes when it ends.
    headline = isolated.run(
        Settings(
            models=("se_resnet50", TIMM_HEADLINE),
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
    runs = {"headline": headline, "mobile": mobile, "table": table}
    return write_pages(
        args.output_dir, runs, (time.time() - start) / 60, datetime.date.today().isoformat()
    )


def write_pages(output_dir, runs, minutes, date):
    """One page per machine kind (CPU and instruction sets), a run replacing the last one of
    its kind, with its .json and chart; docs/benchmarks.md indexes them all."""
    folder = os.path.join(output_dir, "benchmarks")
    stem = os.path.join(folder, machine_key(runs["headline"]["machine"]))
    os.makedirs(folder, exist_ok=True)
    report.plot(runs["table"], stem + ".png")
    report.write_json({**runs, "minutes": minutes, "date": date}, stem + ".json")
    claims = headline_claims(runs["headline"], runs["mobile"])
    with open(stem + ".md", "w") as file:
        file.write(markdown(**runs, claims=claims, minutes=minutes, date=date, key=stem))
    index = write_index(output_dir)
    for claim in claims:
        print(f"{claim[0]}: {claim[1]} (target {claim[2]})")
    print(f"wrote {stem}.md and {index}")


def machine_key(machine):
    """`amd-epyc_avx2-avx512f-...`: the CPU's name and its instruction sets, which decide
    which precision is fast (the same CPU name comes with different sets)."""
    sets = machine.get("instruction_sets")
    flags = "flags-unrecorded" if sets is None else "-".join(sets) or "no-simd-flags"
    return f"{_slug(machine['cpu'])}_{_slug(flags)}"


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def write_index(output_dir):
    """docs/benchmarks.md: every machine kind's page with its CPU flags and figures."""
    folder = os.path.join(output_dir, "benchmarks")
    pages = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as file:
            runs = json.load(file)
        pages.append((os.path.splitext(os.path.basename(path))[0], runs))
    lines = [
        "# Benchmarks",
        "",
        "`python benchmarks/run.py` measures SE networks next to their base networks, timm's "
        "and the authors' PyTorch models, in every CPU runtime, and writes one page per "
        "machine kind: the CPU's name and the instruction sets that decide which precision is "
        "fast (AVX2, AVX-512, VNNI, BF16, AMX). Absolute times are of shared 2-core machines; "
        "the ratios, measured in the same interleaved rounds, are what carries over. The "
        "same measurements for any model: `se-keras benchmark MODEL --compare`.",
        "",
    ]
    for key, runs in pages:
        machine, claims = (
            runs["headline"]["machine"],
            headline_claims(runs["headline"], runs["mobile"]),
        )
        sets = machine.get("instruction_sets")
        dot = machine.get("int8_dot_product")
        flags = (
            ", ".join(sets)
            if sets is not None
            else "not recorded (int8 dot products: " + (", ".join(dot) or "none") + ")"
        )
        lines += [
            f"## [{machine['cpu']}, {machine['cores']} cores: {flags}](benchmarks/{key}.md)",
            "",
            "| figure | measured | target | met |",
            "|---|---|---|---|",
            *(
                f"| {what} | {value} | {target} | {'yes' if met else '**no**'} |"
                for what, value, target, met in claims
                if value != "not measured"
            ),
            "",
        ]
    path = os.path.join(output_dir, "benchmarks.md")
    with open(path, "w") as file:
        file.write("\n".join(lines))
    return path


def headline_claims(headline, mobile):
    """(what, measured, target, met) for the figures the project promises (issue targets)."""
    model, se, base = "se_resnet50", "se_resnet50", "ResNet50 (keras.applications)"
    xla = report.compare(headline, model, (se, "xla"), (base, "xla"), 8)
    float32 = _fastest(headline, model, "float32")
    versus_timm = _versus(headline, model, float32, "timm")
    versus_torch = _versus(headline, model, float32, "torch")
    share = report.gemm_fraction(headline, model, se, float32, 8) if float32 else None
    # float32 time over bf16 time: the speed-up
    bf16 = report.compare(headline, model, (se, float32), (se, "openvino-bf16"), 8)
    bf16 = bf16 if float32 else None
    recommended = {
        runtime: report.se_over_base(headline, model, runtime, 8)
        for _, _, runtime, _ in report.fastest(headline, model, 8)
    }
    worst = max((r for r in recommended.values() if r is not None), default=None)
    xt = TIMM_HEADLINE
    xt_fastest = _fastest(headline, xt, "float32")
    versus_timm_x = _versus(headline, xt, xt_fastest, "timm")
    speedup = int8_speedup(mobile, "se_mobilenet")
    return [
        (
            "SE-ResNet-50 / ResNet50 time under XLA, batch 8",
            _fmt(xla),
            f"<= 1.10 (paper, CPU: {PAPER_CPU_RATIO:.3f})",
            xla is not None and xla <= 1.10,
        ),
        (
            f"our fastest float32 runtime for SE-ResNet-50 ({float32}) / timm's seresnet50 "
            "in PyTorch, batch 8",
            _fmt(versus_timm),
            "<= 0.8",
            versus_timm is not None and versus_timm <= 0.8,
        ),
        (
            f"the same ({float32}) / the authors' SE-ResNet-50 in PyTorch, batch 8",
            _fmt(versus_torch),
            "<= 1.0",
            versus_torch is not None and versus_torch <= 1,
        ),
        (
            f"our fastest float32 runtime for SE-ResNet-50 ({float32}): share of the "
            "machine's float32 GEMM rate (same rounds)",
            _fmt(share),
            ">= 0.8",
            share is not None and share >= 0.8,
        ),
        (
            f"SE-ResNet-50 speed-up of OpenVINO bf16 over our fastest float32 ({float32}), batch 8",
            _fmt(bf16),
            ">= 1.8 (on a CPU with BF16)",
            bf16 is not None and bf16 >= 1.8,
        ),
        (
            "SE / base of the runtimes recommended below (fastest per accuracy class): "
            + ", ".join(f"{rt} {_fmt(r)}" for rt, r in recommended.items()),
            _fmt(worst),
            "<= 1.10 each",
            worst is not None and worst <= 1.10,
        ),
        (
            f"our fastest float32 runtime for {xt} ({xt_fastest}) / timm's own "
            f"{xt.removeprefix('timm_')} in PyTorch, batch 8",
            _fmt(versus_timm_x),
            "<= 0.8",
            versus_timm_x is not None and versus_timm_x <= 0.8,
        ),
        (
            "SE-MobileNet TFLite float32 / full-integer int8 time, batch 1 (int8 speed-up)",
            _fmt(speedup),
            ">= 2 (on a CPU with int8 dot products)",
            speedup is not None and speedup >= 2,
        ),
    ]


def _fastest(results, model, level):
    """Our fastest runtime for `model` at batch 8 within `level`'s tolerance, or None."""
    if not report.labels_exist(results, model):  # a page from before the model was added
        return None
    found = [rt for name, _, rt, _ in report.fastest(results, model, 8) if name == level]
    return found[0] if found else None


def _versus(results, model, runtime, other):
    """Time of our `runtime` over `other`'s (a PyTorch network) for the SE network."""
    if runtime is None:
        return None
    se, _ = report.labels(results, model)
    return report.compare(results, model, (se, runtime), (se, other), 8)


def int8_speedup(mobile, network):
    """TFLite float32 time over full-integer time at batch 1, median of per-round ratios."""
    return report.compare(mobile, "se_mobilenet", (network, "tflite"), (network, "tflite-int8"), 1)


def _fmt(value):
    return "not measured" if value is None else f"{value:.3f}"


def markdown(headline, mobile, table, claims, minutes, date, key):
    key = os.path.basename(key)
    took = f" in {minutes:.0f} minutes" if minutes else ""
    machine = headline["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python benchmarks/run.py` on {date or 'an unrecorded date'}{took} "
        f"(TensorFlow backend, CPU: {machine['cpu']}, {machine['cores']} cores, shared with "
        f"other jobs; {versions}). The same measurements for any model: "
        "`se-keras benchmark MODEL --compare`.",
        "",
        "## The figures",
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
        "as float32; what int8 gains depends on the CPU's int8 dot-product instructions "
        '("Where SE\'s time goes" below).',
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
        "## SE-ResNet-50 against ResNet50, timm and the authors' PyTorch model (batch 8)",
        "",
        report.settings_line(headline),
        "",
        *_headline_tables(headline, "se_resnet50"),
        "",
        f"## {TIMM_HEADLINE} against timm's own (batch 8)",
        "",
        *_headline_tables(headline, TIMM_HEADLINE),
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
        f"![SE / base time per runtime]({key}.png)",
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


def _headline_tables(results, model):
    """A headline model's networks, its runtimes, the GEMM rate and the fastest choices."""
    if not report.labels_exist(results, model):
        return ["not measured in this run"]
    return [
        report.markdown(report.network_table(results, model)),
        "",
        report.markdown(report.inference_table(results, model)),
        "",
        *filter(None, [report.gemm_line(results, model)]),
        "",
        f"**{report.fastest_line(results, model, 8)}.**",
    ]


def _runtime_notes():
    from se_keras.benchmark import RUNTIMES

    return [(name, RUNTIMES[name]) for name in (*TABLE_RUNTIMES, "torch", "timm")]


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
  (checked against keras' MobileNet in the slow tests). What decides int8's gain is the CPU;
  int8 dot-product instructions on this machine: {dot_product}. Without them (an x86 CPU
  with AVX2 only, like the AMD EPYC of the page without recorded flags) XNNPACK's int8
  convolutions run its AVX2 kernels (`qs8-qc8w-gemm ...c8__avx2`), which widen int8 to int16
  and multiply-add pairs with `vpmaddwd`: about as many multiply-adds per instruction as its
  float32 FMA kernels, so int8 saves memory traffic and little else. keras' MobileNet gains
  the same (above), and a one-off check (an ad-hoc script, not part of this benchmark) of
  onnxruntime's int8 (`quantize_static`, uint8 activations, per-channel int8 weights) gave
  1.2x (MobileNet) and 1.3x (SE-MobileNet) over its float32 on that machine. XNNPACK picks
  dot-product kernels where the CPU has them (ARM `asimddp`/`i8mm` phones, x86 AVX-VNNI or
  AVX-512 VNNI); that is where TFLite's 2x-and-more int8 figures come from (the AVX-512 VNNI
  page of docs/benchmarks.md).
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
