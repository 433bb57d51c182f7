"""The `se-keras` command: thin over the package's modules.

Each command imports the modules it uses when it runs, so that it pays only for those:
`list` or `predict` do not load the training stack, tensorflow-datasets, tf2onnx or
keras-tuner (seconds each).
"""

import argparse
import os
import sys


def _model_table(names):
    """The registry's recorded figures: nothing is built (a test checks them against built
    models)."""
    from se_keras import applications
    from se_keras.utils.flops import format_macs

    header = ("model", "input", "parameters", "multiply-adds", "paper", "timm card", "weights")
    rows = [header]
    for name in names:
        entry = applications.entry(name)
        tags = ", ".join(sorted(applications.tags(name))) or "-"
        size = f"{entry.default_size}x{entry.default_size}"
        params = f"{entry.params / 1e6:.2f}M"
        macs = format_macs(entry.macs)
        rows.append((name, size, params, macs, entry.paper_macs, _card_macs(entry), tags))
    return rows


def _card_macs(entry):
    """timm's model-card figure, as the card gives it (GMACs to 0.1) and at its input side."""
    card = entry.published_macs
    if card is None:
        return "-"
    return f"{card.macs / 1e9:.1f}G at {card.size}x{card.size}"


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
    names = args.models or applications.list_models(pretrained=args.pretrained)
    if args.names_only:
        print("\n".join(names))
    elif args.pretrained:
        _print_table(_weights_table(names))
    else:
        _print_table(_model_table(names))


def _weights_table(names):
    """One row per registered weights file: what it expects and the top-1 reported for it."""
    from se_keras import applications

    rows = [("model", "tag", "input", "crop", "interpolation", "top-1", "source")]
    for name in names:
        for tag in sorted(applications.tags(name) - {applications.BASE_TAG}):
            info = applications.get_weights(name, tag)
            size, resize = info.preprocessing["input_size"], info.preprocessing["resize"]
            crop = f"{info.preprocessing.get('crop_pct', size / resize):.3g}"
            top1 = "-" if info.top1 is None else f"{info.top1:.2f}"
            interpolation = info.preprocessing["interpolation"]
            rows.append((name, tag, f"{size}x{size}", crop, interpolation, top1, info.source))
    return rows


def cmd_convert(args):
    import numpy as np

    from se_keras import applications
    from se_keras.convert import reference, torch_checkpoint
    from se_keras.utils import files

    if not args.output.endswith(".weights.h5"):
        raise ValueError(f"The output must end in .weights.h5. Received: -o {args.output}")
    if os.path.exists(args.output) and not args.force:
        raise ValueError(f"{args.output} exists; add --force to replace it")
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
    with files.atomic_path(output) as partial:
        model.save_weights(partial)
    print(f"wrote {args.output}")


def cmd_predict(args):
    _check_model_name(args.model)
    if args.top < 1:
        raise ValueError(f"--top must be at least 1. Received: --top {args.top}")
    if args.weights.endswith(".keras"):
        _predict_with_run(args)
    else:
        _predict_imagenet(args)


def _predict_imagenet(args):
    import numpy as np

    from se_keras import applications, weights
    from se_keras.applications import imagenet_utils

    is_tag = not os.path.isfile(args.weights) and args.weights != applications.BASE_TAG
    preprocessing = (
        applications.get_weights(args.model, args.weights).preprocessing
        if is_tag
        else weights.IMAGENET
    )
    images = np.stack([imagenet_utils.load_image(path, **preprocessing) for path in args.images])
    model = applications.get_model(args.model, weights=args.weights)
    preprocess = applications.family_module(args.model).preprocess_input  # the family's mode
    predictions = model.predict(preprocess(images), verbose=0)
    _print_top(args.images, imagenet_utils.decode_predictions(predictions, args.top))


def _predict_with_run(args):
    """A `model.keras` from `se-keras train`: the run's classes and test-time preprocessing."""
    import numpy as np

    from se_keras.training import run

    if not os.path.isfile(args.weights):
        raise ValueError(f"No such model file: {args.weights}")
    model, names, inputs = run.load_run(args.weights)
    predictions = np.asarray(model.predict(inputs(args.images), verbose=0))
    top = [
        [(str(i), names[i], float(row[i])) for i in np.argsort(row)[::-1][: args.top]]
        for row in predictions
    ]
    _print_top(args.images, top)


def _print_top(paths, top):
    for path, classes in zip(paths, top):
        print(path)
        for rank, (key, name, score) in enumerate(classes, start=1):
            print(f"  {rank}. {name:<28} {key}  {score:.4f}")


def cmd_train(args):
    import dataclasses

    from se_keras.training import TrainConfig, train

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    summary = train(
        config, args.output_dir, download=args.download, progress=lambda m: print(m, flush=True)
    )
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
    result = evaluate(
        args.model, args.weights, args.dataset, args.batch_size, args.image_size, args.data_dir
    )
    print(
        f"{args.model} on {args.dataset} (test): top-1 {result['top1']:.4f}, "
        f"top-5 {result['top5']:.4f}"
    )


def cmd_validate(args):
    from se_keras.training import validate

    _check_model_name(args.model)
    if args.json and os.path.exists(args.json):
        raise ValueError(f"{args.json} exists; choose another --json file")
    result = validate.validate(
        args.model,
        args.weights,
        args.data,
        labels=args.labels,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        limit=args.limit,
        json_path=args.json,
    )
    print(result.line())
    if args.json:
        print(f"wrote {args.json}")


def cmd_tune(args):
    import dataclasses

    from se_keras.tuning import TuneConfig
    from se_keras.tuning import config as tuning

    fields = {f.name for f in dataclasses.fields(TuneConfig)} - {"fixed"}
    config = TuneConfig(
        fixed=tuning.parse_fixed(args.fix), **{k: v for k, v in vars(args).items() if k in fields}
    )
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


def cmd_excitations(args):
    from se_keras.analysis.run import analyse

    _check_model_name(args.model)
    stats, paths = analyse(
        args.model,
        args.weights,
        args.dataset,
        args.classes,
        args.output_dir,
        args.split,
        args.batch_size,
        args.image_size,
        args.data_dir,
        args.blocks,
    )
    print(
        f"recorded {len(stats.blocks)} SE blocks over {stats.examples} {args.split} images of "
        f"{args.dataset}; wrote {', '.join(paths.values())}"
    )


def cmd_export(args):
    from se_keras import applications, export
    from se_keras.export import calibration

    _check_model_name(args.model)
    if os.path.exists(args.output) and not args.force:
        raise ValueError(f"{args.output} exists; add --force to replace it")
    export.check_destination(args.output)  # before the weights are fetched
    if args.quantize and not (
        args.format == "tflite" or (args.format == "onnx" and args.quantize == "int8")
    ):
        raise ValueError(
            "Only TFLite files (float16, dynamic, int8) and ONNX files (int8) are quantized. "
            f"Received: --quantize {args.quantize} with --format {args.format}"
        )
    if args.precision and args.format != "openvino":
        raise ValueError(
            f"Only OpenVINO IR has a --precision. Received: --precision {args.precision} "
            f"with --format {args.format}"
        )
    if args.format == "openvino":
        export.openvino.check(args.output, args.precision or "f32")
    model, weights_used = _model_for_export(args)
    representative = verification = None
    if args.quantize == "int8":
        representative, verification, source = calibration.images(
            model, applications.family_module(args.model).preprocess_input, args.calibration
        )
        print(f"int8 calibration: {source}")
    report = export.export_model(
        model,
        args.output,
        args.format,
        quantize=args.quantize,
        representative_data=representative,
        verification_data=verification,
        batch_size=args.batch_size,
        opset=args.opset,
        overwrite=args.force,
        precision=args.precision or "f32",
    )
    ops = ", ".join(f"{name} x{count}" for name, count in report.operators.items())
    print(
        f"{args.model} ({weights_used}) -> {report.path}: {args.format}"
        f"{f' {report.variant}' if report.variant else ''}, {report.size_bytes / 2**20:.1f} MiB, "
        f"batch {report.batch_size or 'dynamic'}; verified in its runtime: max |difference| "
        f"against Keras {report.max_difference:.2e} (output scale {report.output_scale:.2g}), "
        f"same top-1 on {report.top1_agreement:.0%} of {export.VERIFICATION_BATCH} images; "
        f"operators: {ops}"
    )


def _model_for_export(args):
    from se_keras import applications
    from se_keras.utils import files

    if args.weights and args.weights.endswith(".keras"):
        # Only the network is exported: the training state (optimizer, schedule) is not read.
        return files.load_keras_file(args.weights), args.weights
    released = (
        "imagenet" in applications.tags(args.model)
        and args.classes in (None, 1000)
        and args.input_size is None
    )
    tag = args.weights or ("imagenet" if released else None)
    options = {"classes": args.classes} if args.classes else {}
    if args.input_size:
        options["input_shape"] = (args.input_size, args.input_size, 3)
    model = applications.get_model(args.model, weights=tag, **options)
    return model, f"weights {tag}" if tag else "random weights"


def cmd_benchmark(args):
    from se_keras import benchmark
    from se_keras.benchmark import report

    settings = benchmark.Settings(
        models=tuple(args.models),
        runtimes=benchmark.parse_runtimes(args.runtime),
        batch_sizes=tuple(args.batch_size),
        compare=args.compare,
        rounds=args.rounds,
        threads=args.threads,
        image_size=args.image_size,
        train_batch_size=args.train,
        memory=args.memory,
        cache_dir=args.cache_dir,
    )
    settings.check()  # before TensorFlow starts: a bad option fails at once
    results = benchmark.run(settings)
    print(report.full_text(results))
    if args.json:
        print(f"wrote {report.write_json(results, args.json)}")


def _check_model_name(name):
    from se_keras import applications

    if name not in applications.list_models() and name not in applications.aliases():
        raise ValueError(
            f"Unknown model name {name!r}; expected one of {applications.list_models()}."
        )


def _positive(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _batch_size(text):
    if text in ("dynamic", "auto"):
        return None if text == "dynamic" else text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'dynamic', got {text!r}")
    return int(text)


def _add_run_options(parser, seed):
    """Options shared by the commands that train (train, tune)."""
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument(
        "--no-xla",
        dest="jit_compile",
        action="store_false",
        help="do not compile with XLA (jit_compile=True is the default)",
    )
    parser.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    parser.add_argument(
        "--download",
        action="store_true",
        help="let tensorflow-datasets download the dataset if it is missing",
    )


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line (`se-keras CMD: error: ...`, exit 2), not a usage dump;
    `--help` still shows the usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


class _DefaultsFormatter(argparse.HelpFormatter):
    """Each option's one true default: `(default: X)` after its help, unless the help says
    it in words (a default that depends on other options) or the option is a flag."""

    def _get_help_string(self, action):
        text = action.help or ""
        if not action.option_strings or action.nargs == 0 or "default" in text:
            return text
        if action.default in (None, argparse.SUPPRESS):
            return text
        return f"{text} (default: {action.default})".strip()


def build_parser():
    parser = _Parser(prog="se-keras", description="Squeeze-and-Excitation networks for Keras 3.")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser(
        "list", help="print the model table (parameters, multiply-adds, weights)"
    )
    listing.add_argument("models", nargs="*", help="models to show (default: all)")
    listing.add_argument("--names-only", action="store_true", help="print only the names")
    listing.add_argument(
        "--pretrained",
        action="store_true",
        help="the weights files instead: tag, input size, crop, top-1, source",
    )
    listing.set_defaults(run=cmd_list)

    convert = commands.add_parser(
        "convert", help="convert a PyTorch checkpoint (authors' layout) to .weights.h5"
    )
    convert.add_argument("model", help="model name, e.g. se_resnet50")
    convert.add_argument("checkpoint", help=".pth or .safetensors state dict")
    convert.add_argument("-o", "--output", required=True, help="OUT.weights.h5")
    convert.add_argument("--force", action="store_true", help="replace an existing output")
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
        "train",
        help="train a model on a dataset (default: SE-ResNet-18 on the bundled digits)",
        formatter_class=_DefaultsFormatter,
    )
    train.add_argument("--model", default=defaults.model, help="model name")
    train.add_argument(
        "--dataset",
        default=defaults.dataset,
        help="tensorflow-datasets name, 'digits' (bundled) or a folder",
    )
    train.add_argument("--epochs", type=int, default=defaults.epochs, help="epochs in all")
    train.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="examples per step"
    )
    train.add_argument(
        "--image-size",
        type=int,
        default=defaults.image_size,
        help="input side (default: 32 for small images, else 224)",
    )
    train.add_argument(
        "--optimizer",
        choices=training.OPTIMIZERS,
        default=defaults.optimizer,
        help="SGD with Nesterov momentum 0.9 (the paper's) or AdamW",
    )
    train.add_argument(
        "--learning-rate",
        type=float,
        default=defaults.learning_rate,
        help="peak learning rate (default: 0.1 x batch/256 for SGD, 1e-3 AdamW)",
    )
    train.add_argument(
        "--weight-decay", type=float, default=defaults.weight_decay, help="decoupled weight decay"
    )
    train.add_argument(
        "--label-smoothing",
        type=float,
        default=defaults.label_smoothing,
        help="label smoothing, in [0, 1)",
    )
    train.add_argument(
        "--schedule",
        choices=training.SCHEDULES,
        default=defaults.schedule,
        help="after warm-up: cosine to 0, or step (x0.1 at 50%% and 75%% of training)",
    )
    train.add_argument(
        "--warmup-epochs",
        type=int,
        default=defaults.warmup_epochs,
        help="epochs of linear learning-rate warm-up",
    )
    train.add_argument(
        "--se-ratio", type=int, default=defaults.se_ratio, help="SE reduction ratio r"
    )
    train.add_argument(
        "--weights",
        default=defaults.weights,
        help="fine-tune from this tag or weights file (the classifier starts fresh)",
    )
    train.add_argument(
        "--mixed-precision", action="store_true", help="train in mixed_float16 (GPUs)"
    )
    train.add_argument(
        "--strategy",
        choices=training.STRATEGIES,
        default=defaults.strategy,
        help="distribution: mirrored (local GPUs), multiworker (TF_CONFIG), data_parallel (JAX)",
    )
    train.add_argument(
        "--export",
        choices=training.EXPORTS,
        default=defaults.export,
        help="export the trained model to TFLite and measure it on the test split",
    )
    _add_run_options(train, defaults.seed)
    train.add_argument(
        "--output-dir",
        default="runs/default",
        help="where the run's files go; re-running resumes",
    )
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser("evaluate", help="top-1 / top-5 on a dataset's test split")
    evaluate.add_argument("model", help="model name")
    evaluate.add_argument("--weights", required=True, help="tag, weights file or model.keras")
    evaluate.add_argument("--dataset", default=defaults.dataset)
    evaluate.add_argument("--batch-size", type=int, default=defaults.batch_size)
    evaluate.add_argument(
        "--image-size",
        type=int,
        default=0,
        help="input side (default: a tag's test size; else 32 for small images, 224 others)",
    )
    evaluate.add_argument("--data-dir", default=None)
    evaluate.set_defaults(run=cmd_evaluate)

    validate = commands.add_parser(
        "validate",
        help="top-1 / top-5 on ImageNet validation images, beside the published top-1",
    )
    validate.add_argument("model", help="model name, e.g. se_resnet50")
    validate.add_argument(
        "data",
        help="a folder of class folders (<wnid>/<image>), a flat folder with --labels, or "
        "'imagenet2012' (tensorflow-datasets, prepared from its manual download)",
    )
    validate.add_argument("--weights", default="imagenet", help="tag or weights file")
    validate.add_argument(
        "--labels", default=None, help="for a flat folder: lines '<image> <WNID or class index>'"
    )
    validate.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    validate.add_argument("--batch-size", type=_positive, default=32)
    validate.add_argument("--limit", type=_positive, default=None, help="the first N images only")
    validate.add_argument("--json", default=None, help="also write the result to this file")
    validate.set_defaults(run=cmd_validate)

    from se_keras.tuning import config as tuning

    tune_defaults = tuning.TuneConfig()
    tune = commands.add_parser(
        "tune", help="search models and SE hyper-parameters with keras-tuner (resumable)"
    )
    tune.add_argument(
        "--dataset",
        default=tune_defaults.dataset,
        help="tensorflow-datasets name, 'digits' (bundled) or a folder",
    )
    tune.add_argument(
        "--tuner",
        default=tune_defaults.tuner,
        help=f"{', '.join(tuning.TUNERS)} (default {tune_defaults.tuner})",
    )
    tune.add_argument(
        "--max-trials",
        type=int,
        default=tune_defaults.max_trials,
        help="trials in all; re-running with more runs only the new ones",
    )
    tune.add_argument(
        "--epochs",
        type=int,
        default=tune_defaults.epochs,
        help="epochs per trial (hyperband: the most a trial trains)",
    )
    tune.add_argument("--batch-size", type=int, default=tune_defaults.batch_size)
    tune.add_argument("--image-size", type=int, default=tune_defaults.image_size)
    tune.add_argument(
        "--model",
        dest="models",
        nargs="+",
        default=None,
        metavar="M",
        help="candidate models (default: the eight that build at 32x32)",
    )
    tune.add_argument(
        "--fix",
        action="append",
        metavar="NAME=VALUE",
        help="fix a hyper-parameter, e.g. --fix se_ratio=16 (repeatable)",
    )
    _add_run_options(tune, tune_defaults.seed)
    tune.add_argument(
        "--output-dir",
        default="runs/tune",
        help="where the search lives; re-running resumes it (default runs/tune)",
    )
    tune.set_defaults(run=cmd_tune)

    excitations = commands.add_parser(
        "excitations", help="record every SE block's gates over a dataset; the paper's figures"
    )
    excitations.add_argument("model", help="model name, e.g. se_resnet18")
    excitations.add_argument(
        "--weights", default=None, help="tag, weights file or model.keras (default: random weights)"
    )
    excitations.add_argument(
        "--dataset",
        default=defaults.dataset,
        help="tensorflow-datasets name, 'digits' (bundled) or a folder",
    )
    excitations.add_argument(
        "--classes",
        type=int,
        nargs="+",
        default=None,
        metavar="ID",
        help="class ids to plot (default: four spread over the ids)",
    )
    excitations.add_argument(
        "--blocks",
        nargs="+",
        default=None,
        metavar="NAME",
        help="SE blocks to plot (default: six spread over the depth)",
    )
    excitations.add_argument("--split", default="test")
    excitations.add_argument("--batch-size", type=int, default=defaults.batch_size)
    excitations.add_argument(
        "--image-size", type=int, default=0, help="input side (default: as se-keras train)"
    )
    excitations.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    excitations.add_argument(
        "--output-dir",
        default="runs/excitations",
        help="where the figures and CSVs go (default runs/excitations)",
    )
    excitations.set_defaults(run=cmd_excitations)

    export = commands.add_parser(
        "export",
        help="write a SavedModel, TFLite, ONNX or OpenVINO file, verified against Keras",
    )
    export.add_argument("model", help="model name, e.g. se_resnet50")
    export.add_argument(
        "--format", required=True, choices=("saved_model", "tflite", "onnx", "openvino")
    )
    export.add_argument(
        "--output",
        "-o",
        required=True,
        help="file (OpenVINO: the .xml, its .bin goes beside it; or a SavedModel folder)",
    )
    export.add_argument(
        "--weights",
        default=None,
        help="tag, weights file or model.keras (default: imagenet where "
        "released, unless --classes or --input-size say otherwise)",
    )
    export.add_argument("--input-size", type=_positive, default=None, help="input side")
    export.add_argument(
        "--classes", type=_positive, default=None, help="classes of a new head (random weights)"
    )
    export.add_argument(
        "--quantize",
        choices=("float16", "dynamic", "int8"),
        default=None,
        help="TFLite: float16, dynamic or int8; ONNX: int8 (onnxruntime's static quantization)",
    )
    export.add_argument(
        "--precision",
        choices=("f32", "bf16"),
        default=None,
        help="OpenVINO only: the precision it is verified and run at (default f32; bf16 "
        "needs a CPU with AVX-512 BF16 or AMX)",
    )
    export.add_argument(
        "--calibration",
        choices=("digits", "random"),
        default="digits",
        help="int8 calibration images (default: the bundled digits)",
    )
    export.add_argument(
        "--batch-size",
        type=_batch_size,
        default="auto",
        help="the artifact's batch: a number or 'dynamic' (default: 1 for TFLite files of "
        "models with a channel shuffle, dynamic otherwise)",
    )
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    export.add_argument("--force", action="store_true", help="replace an existing output")
    export.set_defaults(run=cmd_export)

    from se_keras.benchmark import runtimes

    bench = commands.add_parser(
        "benchmark", help="time models next to their base networks in Keras, XLA, TFLite, ONNX"
    )
    bench.add_argument(
        "models",
        nargs="*",
        default=["se_resnet50"],
        metavar="MODEL",
        help="models to time (default: se_resnet50)",
    )
    bench.add_argument(
        "--runtime",
        default=",".join(runtimes.DEFAULT_RUNTIMES),
        help=f"comma-separated, from {', '.join(runtimes.RUNTIMES)} "
        f"(default {','.join(runtimes.DEFAULT_RUNTIMES)})",
    )
    bench.add_argument(
        "--batch-size",
        type=int,
        nargs="+",
        default=[1, 32],
        metavar="N",
        help="batch sizes (default: 1 32)",
    )
    bench.add_argument(
        "--compare",
        action="store_true",
        help="also the keras.applications base network (SE / base ratio) and, "
        "where released, the authors' PyTorch model",
    )
    bench.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="interleaved timings per network and runtime; medians are printed",
    )
    bench.add_argument(
        "--threads", type=int, default=None, help="threads of every runtime (default: all cores)"
    )
    bench.add_argument(
        "--image-size", type=int, default=None, help="input side (default: the model's own)"
    )
    bench.add_argument(
        "--train",
        type=int,
        default=0,
        metavar="BATCH",
        help="also time an XLA training step at this batch size",
    )
    bench.add_argument(
        "--memory",
        action="store_true",
        help="also measure peak memory (one process per network and runtime)",
    )
    bench.add_argument("--cache-dir", default=None, help="keep exported files here")
    bench.add_argument("--json", default=None, help="write all measurements to this file")
    bench.set_defaults(run=cmd_benchmark)
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
