"""Tables (text and Markdown), JSON and a chart from `suite.run` results."""

import json
import math
import os

from se_keras.benchmark.timing import paired_ratio
from se_keras.utils.flops import format_macs


def _find(entries, **match):
    return [e for e in entries if all(e.get(k) == v for k, v in match.items())]


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
    rows = [("network", "input", "parameters", "multiply-adds", "paper")]
    for net in _find(results["networks"], model=model):
        paper = format_macs(net["paper_macs"]) if net["paper_macs"] else "-"
        rows.append(
            (
                net["label"],
                f"{net['image_size']}x{net['image_size']}",
                f"{net['parameters'] / 1e6:.2f}M",
                format_macs(net["macs"]),
                paper,
            )
        )
    return rows


def inference_table(results, model):
    """Per runtime and batch size: SE and base time per batch, images/s, and SE / base."""
    se, base = labels(results, model)
    rows = [("runtime", "batch", se, "images/s", base or "base", "images/s", "SE / base")]
    for entry in _find(results["inference"], model=model, network=se):
        runtime, batch = entry["runtime"], entry["batch_size"]
        if "error" in entry:
            rows.append((runtime, str(batch), entry["error"][:60], "", "", "", ""))
            continue
        b = median(results, model, base, runtime, batch) if base else None
        s = entry["median_s"]
        rows.append(
            (
                runtime,
                str(batch),
                _ms(s),
                _rate(s, batch),
                _ms(b),
                _rate(b, batch),
                _x(se_over_base(results, model, runtime, batch)),
            )
        )
    return rows


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
