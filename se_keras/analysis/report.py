"""The paper's section 7 figures and their numbers, from `ExcitationStats`.

- `class_excitations.png` (Fig. 6 style): for a few SE blocks spread over the depth, the
  mean gate of every channel for several classes and over all examples.
- `spread_by_depth.png`: per SE block, how far the classes' mean gates differ (standard
  deviation across classes, averaged over channels) and the mean gate: the paper finds the
  early blocks class-agnostic and the later ones class-specific.
- `excitations.csv` (block, depth, channel, the mean gate over all examples and per plotted
  class) and `depth.csv` (block, depth, channels, mean gate, class spread).
"""

import csv
import os

import numpy as np

FIGURE_BLOCKS = 6  # the paper's Fig. 6 shows six SE blocks
FIGURE_CLASSES = 4  # and four classes


def pick_classes(num_classes, classes=None):
    """The classes to plot: `classes` checked, or FIGURE_CLASSES spread over the ids."""
    if classes is None:
        count = min(FIGURE_CLASSES, num_classes)
        return sorted({int(round(i)) for i in np.linspace(0, num_classes - 1, count)})
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad or not classes:
        raise ValueError(
            f"Class ids must be among 0 .. {num_classes - 1} (the dataset has {num_classes} "
            f"classes). Received: classes={list(classes)}"
        )
    return list(dict.fromkeys(classes))


def pick_blocks(names, blocks=None):
    """The SE blocks to plot, among the model's `names` (depth order): `blocks` checked, or
    FIGURE_BLOCKS spread over the depth (the last block always among them)."""
    names = list(names)
    if blocks is None:
        count = min(FIGURE_BLOCKS, len(names))
        indices = np.linspace(len(names) - 1, 0, count).round().astype(int)
        return [names[i] for i in sorted(set(indices))]
    unknown = [b for b in blocks if b not in names]
    if unknown or not blocks:
        raise ValueError(
            f"Unknown SE block names; the model has {names}. Received: blocks={list(blocks)}"
        )
    return list(dict.fromkeys(blocks))


def write_csv(stats, output_dir, classes):
    """Write `excitations.csv` and `depth.csv` into `output_dir`; returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = [os.path.join(output_dir, name) for name in ("excitations.csv", "depth.csv")]
    with open(paths[0], "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["block", "depth", "channel", "all"] + [f"class_{c}" for c in classes])
        for depth, block in enumerate(stats.blocks):
            per_class = stats.class_means(block)[classes].T  # (channels, classes)
            for channel, (mean, row) in enumerate(zip(stats.mean(block), per_class)):
                writer.writerow([block, depth, channel] + [f"{v:.6g}" for v in (mean, *row)])
    with open(paths[1], "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["block", "depth", "channels", "mean_excitation", "class_spread"])
        for depth, (block, width) in enumerate(zip(stats.blocks, stats.channels)):
            writer.writerow(
                [
                    block,
                    depth,
                    width,
                    f"{stats.mean(block).mean():.6g}",
                    f"{stats.class_spread(block):.6g}",
                ]
            )
    return paths


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError('The figures need matplotlib: pip install "se-keras[train]"') from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def plot_class_excitations(stats, path, classes, blocks, class_names=None):
    """Fig. 6 style: one panel per block, mean gate per channel for each class and all."""
    plt = _pyplot()
    columns = min(3, len(blocks))
    rows = -(-len(blocks) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.9 * rows), squeeze=False)
    for axis, block in zip(axes.flat, blocks):
        means = stats.class_means(block)
        axis.plot(stats.mean(block), color="gray", linewidth=2.0, alpha=0.6, label="all")
        for c in classes:
            label = class_names[c] if class_names else f"class {c}"
            axis.plot(means[c], linewidth=0.7, label=label)
        axis.set(title=block, xlabel="channel index", ylabel="activation", ylim=(-0.02, 1.02))
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(blocks) :]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def plot_spread(stats, path):
    """Class spread and mean gate of every SE block, by depth."""
    plt = _pyplot()
    depth = np.arange(len(stats.blocks))
    figure, axis = plt.subplots(figsize=(max(6.0, 0.3 * len(depth) + 2), 3.8))
    spread = axis.plot(
        depth,
        [stats.class_spread(b) for b in stats.blocks],
        marker="o",
        label="spread across classes",
    )
    axis.set(xlabel="SE block", ylabel="class spread (std)")
    axis.set_xticks(depth, stats.blocks, rotation=90, fontsize="small")
    twin = axis.twinx()
    mean = twin.plot(
        depth,
        [stats.mean(b).mean() for b in stats.blocks],
        color="gray",
        marker=".",
        linestyle="--",
        label="mean excitation",
    )
    twin.set(ylabel="mean excitation", ylim=(0, 1))
    axis.legend(handles=spread + mean, loc="upper left", fontsize="small")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
