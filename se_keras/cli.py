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

    rows = [("model", "parameters", "multiply-adds (224x224)", "weights")]
    for name in names:
        model = applications.get_model(name, weights=None)
        params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        tags = ", ".join(sorted(weights.tags(name))) or "-"
        rows.append((name, f"{params / 1e6:.2f}M", format_macs(count_macs(model)), tags))
    return rows


def _print_table(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * width for width in widths))


def cmd_list(args):
    from se_keras import applications

    names = applications.list_models()
    unknown = [name for name in args.models if name not in names]
    if unknown:
        raise ValueError(f"Unknown model name {unknown[0]!r}; expected one of {names}.")
    names = args.models or names
    if args.names_only:
        print("\n".join(names))
    else:
        _print_table(_model_table(names))


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
