"""Our multiply-add count of timm's family against two independent figures: PyTorch's own
count of timm 1.0.31's model (`torch.utils.flop_counter.FlopCounterMode`, FLOPs / 2) and the
GMACs of timm's Hugging Face model cards recorded in the registry.

What each count includes. `count_macs`: convolutions, the classifier and every SE block
(its two FC layers, plus one add per input value for the squeeze and one multiply per input
value for the scale); not BatchNorm, ReLU, pooling (the stem's max pool, the avg-down and
anti-aliasing average pools) or the residual additions. FlopCounterMode: convolutions and
matrix products only (timm's SE FCs are 1x1 convolutions, so they are in), none of the
element-wise operations, so not the SE squeeze (a mean) or scale (a multiply) either. The two
must therefore differ by exactly two operations per value entering an SE block, which PyTorch
tells us with a hook on timm's `SEModule`: the test asserts that equality, exactly, and prints
the raw relative difference (0.07% to 0.3% at 224).

timm's networks are built on PyTorch's "meta" device: shapes without storage, so
FlopCounterMode counts SENet-154 or SE-ResNeXt-AA-201-D in a fraction of a second.
"""

import keras
import pytest

from se_keras import applications
from se_keras.applications import timm_resnet
from se_keras.utils.flops import count_macs

SIZE = 224
# The default tier: a basic-unit, a bottleneck and a grouped deep-stem avg-down network
# (about a second each here); the others in the slow tier (35 s).
CHEAP = {"timm_seresnet18", "timm_seresnet50", "timm_seresnext26t_32x4d"}
NAMES = [entry.name for entry in timm_resnet.MODELS]
# A card gives GMACs to 0.1 G (up to 1.2% of SE-ResNet-50's 4.1) and timm's profiler counts
# some element-wise work we do not (measured: -0.07%, +0.14%, +0.27% from ours), so 1.5%.
CARD_TOLERANCE = 0.015


def pytorch_macs(timm, name, size):
    """(FlopCounterMode's FLOPs / 2, values entering SE blocks) of timm's `name` at `size`."""
    import torch
    from timm.layers import SEModule
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = timm.create_model(name.removeprefix("timm_"), pretrained=False).eval()
        images = torch.empty(1, 3, size, size)
    se_inputs = []
    for module in model.modules():
        if isinstance(module, SEModule):
            module.register_forward_hook(lambda m, inputs, _: se_inputs.append(inputs[0].numel()))
    assert len(list(model.modules())) > 20  # hooks on a real network, not an empty shell
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(images)
    assert se_inputs, "timm's model has no SEModule: the comparison would miss SE"
    return counter.get_total_flops() // 2, sum(se_inputs)


def our_macs(name, size):
    model = applications.get_model(name, weights=None, input_shape=(size, size, 3))
    macs = count_macs(model)
    del model
    keras.backend.clear_session()
    return macs


@pytest.mark.parametrize(
    "name", [n if n in CHEAP else pytest.param(n, marks=pytest.mark.slow) for n in NAMES]
)
def test_count_macs_is_pytorchs_count_of_timms_model(timm, name):
    ours = our_macs(name, SIZE)
    pytorch, se_values = pytorch_macs(timm, name, SIZE)
    relative = (ours - pytorch) / pytorch
    print(f"\n{name} at {SIZE}: ours {ours:,}, FlopCounterMode / 2 {pytorch:,} ({relative:+.3%})")
    # The only difference: the SE squeeze (one add) and scale (one multiply) per SE input.
    assert ours == pytorch + 2 * se_values
    assert 0 < relative < 0.005


CARDS = [entry for entry in timm_resnet.MODELS if entry.published_macs is not None]


def test_card_figures_are_timms_own_cards():
    assert {entry.name for entry in CARDS} == set(timm_resnet.CARD_MACS)
    for entry in CARDS:
        card = entry.published_macs
        tag = card.source.removeprefix("https://huggingface.co/timm/")
        # A card of this architecture whose weights are registered, at their training size.
        arch, tag = tag.split(".", 1)
        assert f"timm_{arch}" == entry.name and tag in applications.tags(entry.name)
        info = applications.get_weights(entry.name, tag)
        assert card.size == info.preprocessing["train_input_size"]


@pytest.mark.parametrize(
    "entry",
    [
        e if e.name in CHEAP else pytest.param(e, marks=pytest.mark.slow)
        for e in CARDS  # SE-ResNet-50 (default tier), SE-ResNeXt-101-D, SE-ResNeXt-AA-201-D
    ],
    ids=lambda e: e.name,
)
def test_card_figures_agree_with_our_count(entry):
    card = entry.published_macs
    ours = our_macs(entry.name, card.size)
    relative = (card.macs - ours) / ours
    print(f"\n{entry.name} at {card.size}: ours {ours:,}, card {card.macs:,} ({relative:+.2%})")
    assert abs(relative) <= CARD_TOLERANCE
