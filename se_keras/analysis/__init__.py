"""What SE learns (the paper's section 7): the gate values of every SE block over a dataset,
their statistics per class and by depth, and the paper's figures.

    stats = record(model, dataset, num_classes=10)  # any family, any Keras backend
    stats.class_means("conv5_block2_se")            # (classes, channels)

`se-keras excitations MODEL` does it for a dataset split and writes the figures
(`se_keras.analysis.run.analyse`).
"""

from se_keras.analysis.gates import (
    ExcitationStats,
    batches_of,
    excitations,
    gate_model,
    record,
    se_blocks,
)
from se_keras.analysis.report import plot_class_excitations, plot_spread, write_csv

__all__ = [
    "ExcitationStats",
    "batches_of",
    "excitations",
    "gate_model",
    "plot_class_excitations",
    "plot_spread",
    "record",
    "se_blocks",
    "write_csv",
]
