"""`se-keras excitations`: a model, a dataset split, the gates recorded, figures and CSVs."""

import math
import os

import keras

from se_keras.analysis import gates, report
from se_keras.utils import files
from se_keras.utils.validation import check_positive


def load_model(model_name, weights, num_classes, image_size):
    """`(model, input side)`: a `model.keras` file (from `se-keras train`) as saved, else the
    registered builder with `weights` (None, a tag or a weights file) for the dataset."""
    from se_keras import applications

    if weights is not None and str(weights).endswith(".keras"):
        if not os.path.isfile(weights):
            raise ValueError(f"No such model file. Received: --weights {weights}")
        model = files.load_keras_file(weights)  # no optimizer needed
        side = model.input.shape[1 if keras.config.image_data_format() == "channels_last" else 2]
        return model, side or image_size
    model = applications.get_model(
        model_name, weights=weights, input_shape=(image_size, image_size, 3), classes=num_classes
    )
    return model, image_size


def analyse(
    model_name,
    weights=None,
    dataset="digits",
    classes=None,
    output_dir="runs/excitations",
    split="test",
    batch_size=64,
    image_size=0,
    data_dir=None,
    blocks=None,
    progress=True,
):
    """Record the gates of every SE block of `model_name` over `split` of `dataset`; write
    the figures and CSVs into `output_dir`. Returns `(stats, {kind: path})`."""
    from se_keras import applications, data

    preprocess_mode = applications.family_module(model_name).PREPROCESS_MODE  # checks the name
    check_positive("batch_size", batch_size)
    info = data.dataset_info(dataset, data_dir)
    info.check_split(split)
    classes = report.pick_classes(info.num_classes, classes)
    small = (info.image_side or 224) <= data.pipeline.SMALL_IMAGE  # as `se-keras train`
    model, size = load_model(
        model_name, weights, info.num_classes, image_size or (32 if small else 224)
    )
    blocks = report.pick_blocks((layer.name for layer in gates.se_blocks(model)), blocks)
    batches = data.make_dataset(
        dataset,
        split,
        size,
        batch_size,
        data.normalizer(preprocess_mode),
        training=False,
        data_dir=data_dir,
    )
    steps = math.ceil(info.split_sizes[split] / batch_size)
    stats = gates.record(model, batches, info.num_classes, steps=steps, progress=progress)
    csv_path, depth_path = report.write_csv(stats, output_dir, classes)
    paths = {
        "excitations.csv": csv_path,
        "depth.csv": depth_path,
        "class_excitations.png": report.plot_class_excitations(
            stats, os.path.join(output_dir, "class_excitations.png"), classes, blocks
        ),
        "spread_by_depth.png": report.plot_spread(
            stats, os.path.join(output_dir, "spread_by_depth.png")
        ),
    }
    return stats, paths
