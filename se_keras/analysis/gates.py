"""Recording the gates of every SE block of a model, and their statistics per class.

The gates come from a second functional model over the same layers (shared weights) whose
outputs are `SqueezeExcite.excitation` of each SE block's input: the code path the layer's
own `call` uses, compiled once, on any Keras backend, holding only (batch, channels) per
block in memory.
"""

import dataclasses
import math

import keras
import numpy as np
from keras import ops

from se_keras.layers import SqueezeExcite


class _Gate(keras.layers.Layer):
    """The gate `s` of one SE block on that block's input, shape (batch, channels). Without
    a squeeze (`pooling=None`) the gate varies over space; it is averaged over space."""

    def __init__(self, se, **kwargs):
        super().__init__(name=f"{se.name}_gate", dtype=se.dtype_policy, **kwargs)
        self.se = se

    def call(self, inputs):
        gate = self.se.excitation(inputs)
        rank = len(gate.shape)
        if rank > 2:
            first = 1 if self.se.data_format == "channels_last" else 2
            gate = ops.mean(gate, axis=tuple(range(first, first + rank - 2)))
        return ops.cast(gate, "float32")


def se_blocks(model):
    """The model's `SqueezeExcite` layers, input to output (its layer order)."""
    return [layer for layer in model.layers if isinstance(layer, SqueezeExcite)]


def gate_model(model):
    """A `keras.Model` from `model`'s inputs to the gate of every SE block, in depth order
    (outputs named `<block>_gate`, each (batch, channels)). Shares `model`'s weights."""
    blocks = se_blocks(model)
    if not blocks:
        raise ValueError(
            f"The model has no SqueezeExcite layer (at its top level) to record. "
            f"Received: model={model.name!r}"
        )
    outputs = [_Gate(layer)(layer.input) for layer in blocks]
    probe = keras.Model(model.input, outputs, name=f"{model.name}_gates")
    # Without XLA: its compile costs more than a pass over a test split, and a last,
    # smaller batch would pay it again.
    probe.compile(jit_compile=False)
    return probe


def _gates_of(probe, images):
    gates = probe.predict_on_batch(images)
    return [np.asarray(g) for g in (gates if isinstance(gates, (list, tuple)) else [gates])]


def excitations(model, images):
    """{block name: gate values (examples, channels)} of every SE block for one batch of
    `images` (run eagerly; `record` runs a whole dataset through a compiled function)."""
    gates = keras.tree.flatten(gate_model(model)(images, training=False))
    names = (layer.name for layer in se_blocks(model))
    return {name: keras.ops.convert_to_numpy(g) for name, g in zip(names, gates)}


@dataclasses.dataclass
class ExcitationStats:
    """Sums of the gates of every SE block per class, over a dataset.

    `blocks`: SE block names in depth order; `channels`: their widths; `sums[b]`: (classes,
    channels) sum of block b's gates over the examples of each class; `counts`: examples per
    class.
    """

    blocks: tuple
    channels: tuple
    sums: dict
    counts: np.ndarray

    @property
    def examples(self):
        return int(self.counts.sum())

    def class_means(self, block):
        """(classes, channels) mean gate per class; NaN for a class without examples."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums[block] / self.counts[:, None]

    def mean(self, block):
        """(channels,) mean gate over all examples."""
        return self.sums[block].sum(axis=0) / max(self.examples, 1)

    def class_spread(self, block):
        """How class-specific the block is: the standard deviation across classes (those with
        examples) of the class-mean gate, averaged over channels."""
        means = self.class_means(block)[self.counts > 0]
        return float(means.std(axis=0).mean())


def record(model, data, num_classes, steps=None, progress=True):
    """Gate statistics of every SE block of `model` over `data`.

    Args:
        model: a Keras functional model with `SqueezeExcite` layers.
        data: an iterable of `(images, labels)` batches (a `tf.data.Dataset`, a list of
            NumPy pairs, ...); labels are class ids or one-hot rows.
        num_classes: number of classes (labels are in `[0, num_classes)`).
        steps: batches in `data`, for the progress bar (default: `len(data)` if known).
        progress: show a `keras.utils.Progbar` over the batches.

    Returns:
        An `ExcitationStats`.
    """
    blocks = se_blocks(model)
    probe = gate_model(model)
    names = tuple(layer.name for layer in blocks)
    sums = {layer.name: np.zeros((num_classes, layer.channels)) for layer in blocks}
    counts = np.zeros(num_classes, dtype=np.int64)
    if steps is None and hasattr(data, "__len__"):
        steps = len(data)
    bar = keras.utils.Progbar(steps, unit_name="batch") if progress else None
    for step, (images, labels) in enumerate(data, start=1):
        labels = np.asarray(labels)
        labels = labels.argmax(axis=-1) if labels.ndim == 2 else labels.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"A label is outside [0, {num_classes}): the data has more classes than "
                f"`num_classes`. Received: num_classes={num_classes}"
            )
        for name, gates in zip(names, _gates_of(probe, np.asarray(images))):
            np.add.at(sums[name], labels, gates)
        counts += np.bincount(labels, minlength=num_classes)
        if bar is not None:
            bar.update(step)
    return ExcitationStats(names, tuple(layer.channels for layer in blocks), sums, counts)


def batches_of(images, labels, batch_size):
    """`(images, labels)` NumPy arrays cut into batches, for `record`."""
    count = math.ceil(len(images) / batch_size)
    return [
        (
            images[i * batch_size : (i + 1) * batch_size],
            labels[i * batch_size : (i + 1) * batch_size],
        )
        for i in range(count)
    ]
