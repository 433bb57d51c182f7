"""Small networks of timm's family, with the parts no other family has, for the tests that
must stay cheap (exports, backends, XLA): timm's layout narrowed through its `channels`.

- `timm_small_aa_d`: one grouped unit per stage, the deep stem, average-pool ("d") shortcuts
  and anti-aliased ("aa") downsampling (stride-1 3x3 + 2x2 average pool, and a 2x2 average
  pool as the stem's pool), like SE-ResNeXt-AA-101-D; ~0.9M parameters.
- `timm_small_d`: the same without anti-aliasing (like SE-ResNeXt-26-D); at an input whose
  stages reach odd sides (72: 9 at conv4's input) its shortcut pools take timm's ceil mode
  without counting the padding.

Imported by pytest as `tests.timm_small` and by tests/backend_worker.py (a script run in
its own process) as `timm_small`, so it imports nothing from `tests`.
"""

import dataclasses
import inspect
import types

from se_keras import applications
from se_keras.applications import timm_resnet

_NARROW = {
    "cardinality": 8,
    "base_width": 4,
    "stem": "deep",
    "stem_width": 16,
    "avg_down": True,
    "channels": (32, 64, 128, 256),
}
# name -> (spec, the registered model of the same layout: its builder's arguments and tags)
SMALL = {
    "timm_small_aa_d": (
        timm_resnet.TimmResNetSpec((1, 1, 1, 1), aa=True, **_NARROW),
        "timm_seresnextaa101d_32x8d",
    ),
    "timm_small_d": (
        timm_resnet.TimmResNetSpec((1, 1, 1, 1), **_NARROW),
        "timm_seresnext26d_32x4d",
    ),
}


def timm_arguments(spec):
    """The keyword arguments of timm's `ResNet` (with `block_args=dict(attn_layer="se")`)
    for `spec` (bottleneck units), so that the reference builds the same network."""
    from torch import nn

    arguments = {
        "cardinality": spec.cardinality,
        "base_width": spec.base_width,
        "stem_width": spec.stem_width,
        "stem_type": spec.stem,
        "avg_down": spec.avg_down,
        "down_kernel_size": spec.down_kernel_size,
        "block_reduce_first": spec.block_reduce_first,
        "channels": spec.channels,
    }
    return {**arguments, "aa_layer": nn.AvgPool2d} if spec.aa else arguments


def build_spec(spec, layout, **arguments):
    """`spec` built by the family's build function under the registered name `layout` (the
    name only decides which tags `weights=` may take), with its builder's arguments."""
    entry = dataclasses.replace(applications.entry(layout), spec=spec)
    signature = inspect.signature(applications.builder(layout))
    bound = signature.bind(**{"weights": None, **arguments})
    bound.apply_defaults()
    return timm_resnet.FAMILY.build(entry, types.SimpleNamespace(**bound.arguments))


def build(name, **arguments):
    """The small network `name` (a key of `SMALL`), named `name` unless told otherwise."""
    spec, layout = SMALL[name]
    return build_spec(spec, layout, **{"name": name, **arguments})
