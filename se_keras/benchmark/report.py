"""Tables (text and Markdown), JSON and a chart from `suite.run` results."""

import json
import math
import os

from se_keras.benchmark.timing import paired_ratio
from se_keras.export import TOLERANCES as export_tolerances
from se_keras.utils.flops import format_macs


def _find(entries, **match):
    return [e for e in entries if all(e.get(k) == v for k, v in match.items())]


def labels_exist(results, model):
    return bool(_find(results["networks"], model=model, role="se"))


def labels(results, model):
    """(SE label, base label or None) of `model`."""
    rows = _find(results["networks"], model=model)
    base = [r["label"] for r in rows if r["role"] == "base"]
    return next(r["label"] for r in rows if r["role"] == "se"), (base[0] if base else None)


def _entry(results, model, network, runtime, batch_size, kind="inference"):
    found = _find(
        results[kind], model=model, network=network, runtime=runtime, batch_size=batch_size
    )
    return found[0] if found and "error" not in found[0] else None


def median(results, model, network, runtime, batch_size, kind="inference"):
    """Median seconds per batch, or None (not measured, or failed)."""
    entry = _entry(results, model, network, runtime, batch_size, kind)
    return entry["median_s"] if entry else None


def compare(results, model, first, second, batch_size, kind="inference"):
    """Time of `first` over time of `second`, each a `(network, runtime)`, as the median of
    the per-round ratios (both were timed in the same rounds); None if either is missing."""
    a = _entry(results, model, *first, batch_size, kind)
    b = _entry(results, model, *second, batch_size, kind)
    return paired_ratio(a["seconds"], b["seconds"]) if a and b else None


def se_over_base(results, model, runtime, batch_size, kind="inference"):
    se, base = labels(results, model)
    return compare(results, model, (se, runtime), (base, runtime), batch_size, kind)


def _ms(seconds):
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _rate(seconds, batch_size):
    if seconds is None:
        return "-"
    rate = batch_size / seconds
    return f"{rate:.3g}/s" if rate < 1000 else f"{rate:.0f}/s"


def _x(value):
    return "-" if value is None else f"{value:.3f}"


def network_table(results, model):
    nets = _find(results["networks"], model=model)
    timm = any("timm_arch" in net for net in nets)  # the `timm` runtime's network too
    rows = [("network", "input", "parameters", "multiply-adds", "paper", *["timm's"] * timm)]
    for net in nets:
        paper = format_macs(net["paper_macs"]) if net["paper_macs"] else "-"
        timm_cell = (
            f"{net['timm_arch']}: {format_macs(net['timm_macs'])}" if "timm_arch" in net else "-"
        )
        rows.append(
            (
                net["label"],
                f"{net['image_size']}x{net['image_size']}",
                f"{net['parameters'] / 1e6:.2f}M",
                format_macs(net["macs"]),
                paper,
                *[timm_cell] * timm,
            )
        )
    return rows


def inference_table(results, model):
    """Per runtime and batch size: SE and base time per batch, images/s, the SE network's
    share of the machine's float32 GEMM rate, its outputs' largest difference from Keras (over
    the output scale), and SE / base."""
    se, base = labels(results, model)
    rows = [
        (
            "runtime",
            "batch",
            se,
            "images/s",
            "of GEMM",
            "max diff",
            base or "base",
            "images/s",
            "SE / base",
        )
    ]
    for entry in _find(results["inference"], model=model, network=se):
        runtime, batch = entry["runtime"], entry["batch_size"]
        name = _runtime_label(results, model, se, runtime)
        if "error" in entry:
            rows.append((name, str(batch), entry["error"][:60], *[""] * 6))
            continue
        b = median(results, model, base, runtime, batch) if base else None
        s = entry["median_s"]
        difference = entry.get("relative_difference")
        rows.append(
            (
                name,
                str(batch),
                _ms(s),
                _rate(s, batch),
                _percent(gemm_fraction(results, model, se, runtime, batch)),
                "-" if difference is None else f"{difference:.1e}",
                _ms(b),
                _rate(b, batch),
                _x(se_over_base(results, model, runtime, batch)),
            )
        )
    return rows


def _runtime_label(results, model, network, runtime):
    """`timm` rows name timm's architecture: for the paper's models it is not ours."""
    if runtime != "timm":
        return runtime
    found = _find(results["networks"], model=model, label=network)
    return f"timm ({found[0]['timm_arch']})" if found and "timm_arch" in found[0] else runtime


def _percent(value):
    return "-" if value is None else f"{value:.0%}"


def gemm_rate(results, model, batch_size):
    """The machine's float32 GEMM rate (FLOP/s), the best library's in the same rounds, or
    None."""
    found = _find(results.get("gemm", []), model=model, batch_size=batch_size)
    return max(e["flop_per_s"] for e in found) if found else None


def gemm_fraction(results, model, network, runtime, batch_size):
    """The network's achieved FLOP/s (2 x multiply-adds per image) in `runtime` over the
    machine's float32 GEMM rate in the same rounds: how near the hardware a runtime runs
    (above 1 is possible only in lower precision). None where either is missing."""
    seconds = median(results, model, network, runtime, batch_size)
    rate = gemm_rate(results, model, batch_size)
    found = _find(results["networks"], model=model, label=network)
    if seconds is None or rate is None or not found:
        return None
    macs = found[0].get("timm_macs") if runtime == "timm" else found[0]["macs"]
    return 2 * macs * batch_size / seconds / rate


# The accuracy classes the fastest runtime is chosen within: the exports' tolerances
# (largest |difference| from Keras over the output scale) of float32, bf16 and int8 files.
TOLERANCE_CLASSES = (
    ("float32", export_tolerances[None]),
    ("bf16", export_tolerances["bf16"]),
    ("int8", export_tolerances["int8"]),
)


def fastest(results, model, batch_size):
    """`[(class, tolerance, runtime, median seconds)]`: per accuracy class, the fastest of our
    runtimes for the SE network whose measured difference from Keras is within it (the
    PyTorch networks run other weights and are not candidates)."""
    if not labels_exist(results, model):
        return []
    se, _ = labels(results, model)
    candidates = [
        e
        for e in _find(results["inference"], model=model, network=se, batch_size=batch_size)
        if "median_s" in e and e.get("relative_difference") is not None
    ]
    found = []
    for name, tolerance in TOLERANCE_CLASSES:
        within = [e for e in candidates if e["relative_difference"] <= tolerance]
        if within:
            best = min(within, key=lambda e: e["median_s"])
            found.append((name, tolerance, best["runtime"], best["median_s"]))
    return found


def fastest_line(results, model, batch_size):
    """One line: the fastest runtime for `model` at `batch_size` within each tolerance."""
    choices = fastest(results, model, batch_size)
    if not choices:
        return f"{model}, batch {batch_size}: no runtime of ours was measured"
    parts = [
        f"{name}-level (max diff <= {tolerance:g} x scale) {runtime} {_ms(seconds)}"
        for name, tolerance, runtime, seconds in choices
    ]
    return f"fastest for {model} at batch {batch_size} here: " + "; ".join(parts)


def gemm_line(results, model):
    found = _find(results.get("gemm", []), model=model)
    if not found:
        return None
    rates = [
        f"{e.get('library', 'numpy')} {e['flop_per_s'] / 1e9:.0f} GFLOP/s "
        f"(batch {e['batch_size']} rounds)"
        for e in found
    ]
    size = found[0]["size"]
    return (
        f"the machine's float32 GEMM ({size}x{size}x{size}, "
        f"{results['machine']['threads']} threads; the best is the ceiling), in the same "
        "rounds: " + ", ".join(rates)
    )


def training_table(results):
    rows = [("model", "batch", "SE step", "images/s", "base step", "images/s", "SE / base")]
    for model in dict.fromkeys(e["model"] for e in results["training"]):
        se, base = labels(results, model)
        for entry in _find(results["training"], model=model, network=se):
            batch, s = entry["batch_size"], entry["median_s"]
            b = median(results, model, base, "xla", batch, "training") if base else None
            rows.append(
                (
                    model,
                    str(batch),
                    _ms(s),
                    _rate(s, batch),
                    _ms(b),
                    _rate(b, batch),
                    _x(se_over_base(results, model, "xla", batch, "training")),
                )
            )
    return rows


def memory_table(results):
    rows = [("network", "runtime", "batch", "peak memory")]
    for entry in results["memory"]:
        value = (
            entry["error"][:60] if "error" in entry else f"{entry['peak_bytes'] / 2**20:.0f} MiB"
        )
        rows.append((entry["network"], entry["runtime"], str(entry["batch_size"]), value))
    return rows


def text(rows):
    """Rows as aligned columns, the first one underlined."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown(rows):
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def settings_line(results):
    machine, settings = results["machine"], results["settings"]
    load = machine["load_average_before"], machine.get("load_average_after", math.nan)
    return (
        f"{machine['cpu']}{_instructions(machine)}, {machine['cores']} cores, "
        f"{machine['threads']} threads per "
        f"runtime; medians of {settings['rounds']} interleaved rounds (SE / base: median "
        f"of the per-round ratios); float32 unless int8 or bf16; load average {load[0]:.1f} "
        f"before, {load[1]:.1f} after"
    )


def _instructions(machine):
    """` (AVX2, AVX-512F, ...)`: the CPU's instruction sets that decide which precision is
    fast; empty for results recorded before they were."""
    sets = machine.get("instruction_sets")
    if sets is None:
        return ""
    return f" ({', '.join(sets) or 'none of AVX2, AVX-512, VNNI, BF16, AMX'})"


def full_text(results):
    """Everything `se-keras benchmark` prints."""
    parts = [settings_line(results)]
    for model in dict.fromkeys(n["model"] for n in results["networks"]):
        parts += [
            "",
            text(network_table(results, model)),
            "",
            text(inference_table(results, model)),
            *filter(None, [gemm_line(results, model)]),
            *(fastest_line(results, model, b) for b in results["settings"]["batch_sizes"]),
        ]
    if results["training"]:
        parts += ["", "training step (XLA, SGD):", text(training_table(results))]
    if results["memory"]:
        parts += [
            "",
            "peak memory above the runtime's import baseline:",
            text(memory_table(results)),
        ]
    return "\n".join(parts)


def write_json(results, path):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w") as file:
        json.dump(results, file, indent=1, default=float)
        file.write("\n")
    return path


def plot(results, path, models=None, batch_size=None):
    """A PNG with, per model, the SE / base time ratio in each runtime (1.0: SE is free)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = models or list(dict.fromkeys(n["model"] for n in results["networks"]))
    batch_size = batch_size or min(results["settings"]["batch_sizes"])
    runtime_names = list(
        dict.fromkeys(e["runtime"] for e in results["inference"] if e["runtime"] != "torch")
    )
    figure, axis = plt.subplots(figsize=(1.6 + 1.3 * len(models) * len(runtime_names) / 3, 3.6))
    width = 0.8 / max(1, len(runtime_names))
    for index, runtime in enumerate(runtime_names):
        values = []
        for model in models:
            values.append(se_over_base(results, model, runtime, batch_size) or 0)
        positions = [m + (index - (len(runtime_names) - 1) / 2) * width for m in range(len(models))]
        bars = axis.bar(positions, values, width, label=runtime)
        axis.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_xticks(range(len(models)), models)
    axis.set_ylabel(f"time SE / base (batch {batch_size})")
    axis.set_ylim(0, max(1.3, axis.get_ylim()[1]))
    axis.legend(fontsize=7, ncols=min(len(runtime_names), 5), loc="upper center")
    axis.set_title("What SE costs, per runtime (measured side by side, medians)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=130)
    plt.close(figure)
    return path
