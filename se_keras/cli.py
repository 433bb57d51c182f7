"""The `se-keras` command: thin over the package's modules."""

import argparse
import os
import sys

# Before TensorFlow loads: keep its start-up chatter out of the command's output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _model_table(names):
    import numpy as np

    from se_keras import applications, weights
    from se_keras.utils.flops import count_macs, format_macs

    rows = [("model", "input", "parameters", "multiply-adds", "weights")]
    for name in names:
        model = applications.get_model(name, weights=None)
        params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        tags = ", ".join(sorted(weights.tags(name))) or "-"
        size = "x".join(str(d) for d in model.input.shape[1:3])
        rows.append((name, size, f"{params / 1e6:.2f}M", format_macs(count_macs(model)), tags))
    return rows


def _print_table(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * width for width in widths))


def cmd_list(args):
    from se_keras import applications

    for name in args.models:
        _check_model_name(name)
    names = args.models or applications.list_models()
    if args.names_only:
        print("\n".join(names))
    else:
        _print_table(_model_table(names))


def cmd_convert(args):
    import numpy as np

    from se_keras import applications
    from se_keras.convert import reference, torch_checkpoint
    from se_keras.weights import download

    if not args.output.endswith(".weights.h5"):
        raise ValueError(f"The output must end in .weights.h5. Received: -o {args.output}")
    if not os.path.isfile(args.checkpoint):
        raise ValueError(f"No such checkpoint file: {args.checkpoint}")
    _check_model_name(args.model)
    model = applications.get_model(args.model, weights=args.checkpoint, classifier_activation=None)
    ref = reference.reference_model(args.model, torch_checkpoint.read_state_dict(args.checkpoint))
    if ref is None:
        print(
            f"not verified: the authors' PyTorch {args.model} needs torch and "
            "`pip install --no-deps pretrainedmodels` (available for "
            f"{', '.join(reference.REFERENCE_BUILDERS)})"
        )
    else:
        images = np.random.default_rng(0).standard_normal((2, 224, 224, 3), dtype=np.float32)
        expected = reference.run(ref, images)
        difference = float(np.abs(model.predict(images, verbose=0) - expected).max())
        scale = float(np.abs(expected).max())
        print(
            f"verified: max |logit difference| against the authors' PyTorch network "
            f"{difference:.2e} (logit scale {scale:.2e}) on a random batch of 2"
        )
        if difference > 1e-4 * scale:
            raise ValueError(f"the conversion does not match the reference ({difference:.2e})")
    output = os.path.abspath(args.output)
    with download.atomic_path(output) as partial:
        model.save_weights(partial)
    print(f"wrote {args.output}")


def cmd_predict(args):
    import numpy as np

    from se_keras import applications, weights
    from se_keras.applications import imagenet_utils

    _check_model_name(args.model)
    if args.top < 1:
        raise ValueError(f"--top must be at least 1. Received: --top {args.top}")
    is_tag = not os.path.isfile(args.weights)
    preprocessing = (
        weights.get(args.model, args.weights).preprocessing if is_tag else weights.IMAGENET
    )
    images = np.stack([imagenet_utils.load_image(path, **preprocessing) for path in args.images])
    model = applications.get_model(args.model, weights=args.weights)
    predictions = model.predict(imagenet_utils.preprocess_input(images), verbose=0)
    for path, top in zip(args.images, imagenet_utils.decode_predictions(predictions, args.top)):
        print(path)
        for rank, (wnid, name, score) in enumerate(top, start=1):
            print(f"  {rank}. {name:<28} {wnid}  {score:.4f}")


def cmd_train(args):
    import dataclasses

    from se_keras.training import TrainConfig, train

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    summary = train(config, args.output_dir, download=args.download)
    exported = ", ".join(
        f"{fmt} {entry['path']} (test accuracy {entry['accuracy']:.4f})"
        for fmt, entry in summary["exported"].items()
    )
    print(
        f"test accuracy {summary['test_accuracy']:.4f} (top-5 {summary['test_top5']:.4f}); "
        f"exported: {exported or 'nothing'}; everything is in {args.output_dir}"
    )


def cmd_evaluate(args):
    from se_keras.training import evaluate

    _check_model_name(args.model)
    result = evaluate(args.model, args.weights, args.dataset, args.batch_size,
                      args.image_size, args.data_dir)
    print(f"{args.model} on {args.dataset} (test): top-1 {result['top1']:.4f}, "
          f"top-5 {result['top5']:.4f}")


def cmd_tune(args):
    import dataclasses

    from se_keras.tuning import TuneConfig, config as tuning

    fields = {f.name for f in dataclasses.fields(TuneConfig)} - {"fixed"}
    config = TuneConfig(fixed=tuning.parse_fixed(args.fix),
                        **{k: v for k, v in vars(args).items() if k in fields})
    config.check()  # before keras-tuner loads or any data is read: a bad option fails at once

    from se_keras.tuning import search

    def progress(trial, seconds):
        print(search.progress_line(trial, seconds), flush=True)

    try:
        result = search.tune(config, args.output_dir, download=args.download, on_trial_end=progress)
    except search.SearchFailed as error:
        raise ValueError(str(error)) from None
    _print_table(search.trial_table(result.trials))
    old = len(result.trials) - result.trials_run
    print(
        f"ran {result.trials_run} trial{'s' if result.trials_run != 1 else ''}"
        f"{f' ({old} already in {args.output_dir})' if old else ''}; best: trial "
        f"{result.best_trial_id} ({result.best_hyperparameters['model']}, {search.OBJECTIVE} "
        f"{result.best_score:.4f}); wrote {os.path.join(args.output_dir, search.BEST_MODEL)} and "
        f"{search.BEST_HYPERPARAMETERS}"
    )


def _check_model_name(name):
    from se_keras import applications

    if name not in applications.list_models():
        raise ValueError(f"Unknown model name {name!r}; expected one of {applications.list_models()}.")


def _add_run_options(parser, seed):
    """Options shared by the commands that train (train, tune)."""
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--no-xla", dest="jit_compile", action="store_false",
                        help="do not compile with XLA (jit_compile=True is the default)")
    parser.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    parser.add_argument("--download", action="store_true",
                        help="let tensorflow-datasets download the dataset if it is missing")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="se-keras", description="Squeeze-and-Excitation networks for Keras 3."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser(
        "list", help="print the model table (parameters, multiply-adds, weights)"
    )
    listing.add_argument("models", nargs="*", help="models to show (default: all)")
    listing.add_argument("--names-only", action="store_true", help="print only the names")
    listing.set_defaults(run=cmd_list)

    convert = commands.add_parser(
        "convert", help="convert a PyTorch checkpoint (authors' layout) to .weights.h5"
    )
    convert.add_argument("model", help="model name, e.g. se_resnet50")
    convert.add_argument("checkpoint", help=".pth or .safetensors state dict")
    convert.add_argument("-o", "--output", required=True, help="OUT.weights.h5")
    convert.set_defaults(run=cmd_convert)

    predict = commands.add_parser("predict", help="top-k ImageNet classes of image files")
    predict.add_argument("model", help="model name, e.g. se_resnet50")
    predict.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    predict.add_argument("--weights", default="imagenet", help="tag or weights file")
    predict.add_argument("--top", type=int, default=5, help="classes to print (default 5)")
    predict.set_defaults(run=cmd_predict)

    from se_keras.training import config as training

    defaults = training.TrainConfig()
    train = commands.add_parser(
        "train", help="train a model on a dataset (default: SE-ResNet-18 on the bundled digits)"
    )
    train.add_argument("--model", default=defaults.model, help="model name")
    train.add_argument("--dataset", default=defaults.dataset,
                       help="tensorflow-datasets name, 'digits' (bundled) or a folder")
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--image-size", type=int, default=defaults.image_size,
                       help="input side (default: 32 for small images, else 224)")
    train.add_argument("--optimizer", choices=training.OPTIMIZERS, default=defaults.optimizer)
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                       help="peak learning rate (default: 0.1 x batch/256 for SGD, 1e-3 AdamW)")
    train.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    train.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing)
    train.add_argument("--schedule", choices=training.SCHEDULES, default=defaults.schedule)
    train.add_argument("--warmup-epochs", type=int, default=defaults.warmup_epochs)
    train.add_argument("--se-ratio", type=int, default=defaults.se_ratio)
    train.add_argument("--mixed-precision", action="store_true")
    train.add_argument("--strategy", choices=training.STRATEGIES, default=defaults.strategy)
    train.add_argument("--export", choices=training.EXPORTS, default=defaults.export)
    _add_run_options(train, defaults.seed)
    train.add_argument("--output-dir", default="runs/default",
                       help="where the run's files go; re-running resumes (default runs/default)")
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser("evaluate", help="top-1 / top-5 on a dataset's test split")
    evaluate.add_argument("model", help="model name")
    evaluate.add_argument("--weights", required=True, help="tag, weights file or model.keras")
    evaluate.add_argument("--dataset", default=defaults.dataset)
    evaluate.add_argument("--batch-size", type=int, default=defaults.batch_size)
    evaluate.add_argument("--image-size", type=int, default=0)
    evaluate.add_argument("--data-dir", default=None)
    evaluate.set_defaults(run=cmd_evaluate)

    from se_keras.tuning import config as tuning

    tune_defaults = tuning.TuneConfig()
    tune = commands.add_parser(
        "tune", help="search models and SE hyper-parameters with keras-tuner (resumable)"
    )
    tune.add_argument("--dataset", default=tune_defaults.dataset,
                      help="tensorflow-datasets name, 'digits' (bundled) or a folder")
    tune.add_argument("--tuner", default=tune_defaults.tuner,
                      help=f"{', '.join(tuning.TUNERS)} (default {tune_defaults.tuner})")
    tune.add_argument("--max-trials", type=int, default=tune_defaults.max_trials,
                      help="trials in all; re-running with more runs only the new ones")
    tune.add_argument("--epochs", type=int, default=tune_defaults.epochs,
                      help="epochs per trial (hyperband: the most a trial trains)")
    tune.add_argument("--batch-size", type=int, default=tune_defaults.batch_size)
    tune.add_argument("--image-size", type=int, default=tune_defaults.image_size)
    tune.add_argument("--model", dest="models", nargs="+", default=None, metavar="M",
                      help="candidate models (default: the eight that build at 32x32)")
    tune.add_argument("--fix", action="append", metavar="NAME=VALUE",
                      help="fix a hyper-parameter, e.g. --fix se_ratio=16 (repeatable)")
    _add_run_options(tune, tune_defaults.seed)
    tune.add_argument("--output-dir", default="runs/tune",
                      help="where the search lives; re-running resumes it (default runs/tune)")
    tune.set_defaults(run=cmd_tune)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, OSError, ImportError) as error:
        print(f"se-keras {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
