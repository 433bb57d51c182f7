"""timm's SE-ResNet / SE-ResNeXt family against timm 1.0.31 itself: the same timm-layout
checkpoint gives the same outputs, and the same parameter counts.

timm's model gets random weights, random BatchNorm scales and shifts and calibrated running
statistics (`tests.timm_reference.randomize`); its state dict goes through the public
`weights=` path (.pth and .safetensors), and both run the same random batch in inference mode.
Ours (float32) is measured against timm's exact (float64) result; every registered
architecture is also built in float64, where the two agree to 1e-15 to 1e-12 of the scale.
"""

import contextlib
import functools
import types

import keras
import numpy as np
import pytest

import se_keras
from se_keras.applications import timm_resnet
from se_keras.layers import SqueezeExcite, bottleneck_width
from tests import timm_small
from tests.timm_reference import randomize, run

TOLERANCE = 1e-4  # of the outputs' scale


def _save(torch_model, path):
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in torch_model.state_dict().items()}, str(path))
    else:
        import torch

        torch.save(torch_model.state_dict(), path)
    return str(path)


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _assert_close(got, expected):
    """`got` within 1e-4 of the outputs' scale of timm's exact (float64) `expected`."""
    assert got.shape == expected.shape
    scale = np.abs(expected).max()
    assert scale > 1e-3  # not a comparison of two near-zero tensors
    difference = np.abs(got - expected).max()
    assert difference <= TOLERANCE * scale, (difference, scale)
    return difference / scale


def _parity(build, ref, path, rows, cols=None, include_top=True, batch=2):
    """Our model from `build(weights=..., ...)` against timm's `ref` at rows x cols."""
    cols = cols or rows
    model = build(
        weights=path,
        include_top=include_top,
        classifier_activation=None,
        input_shape=(rows, cols, 3),
    )
    rng = np.random.default_rng(rows * cols)
    images = rng.standard_normal((batch, rows, cols, 3), "float32")
    features_only = not include_top
    relative = _assert_close(model.predict(images, verbose=0), run(ref, images, features_only))
    print(f"{model.name} {images.shape[1:3]}: max difference {relative:.1e} of the scale")
    return model


def _timm_parity(timm, arch, tmp_path, size, suffix=".pth", non_square=None):
    """`size`: an int (logits at size x size) or (rows, cols); `non_square`: (rows, cols)
    of a second, headless comparison."""
    rows, cols = (size, size) if isinstance(size, int) else size
    ref = randomize(timm.create_model(arch), seed=len(arch), size=rows)
    path = _save(ref, tmp_path / f"{arch}{suffix}")
    build = functools.partial(se_keras.applications.get_model, f"timm/{arch}")
    model = _parity(build, ref, path, rows, cols)
    assert _trainable(model) == sum(p.numel() for p in ref.parameters())
    del model
    keras.backend.clear_session()
    if non_square:
        _parity(build, ref, path, *non_square, include_top=False)


# Default tier: the basic unit, the tiered deep stem with average-pool shortcuts at an odd,
# non-square size, and timm's senet154 and anti-aliased units on one-unit-per-stage networks.
@pytest.mark.parametrize(
    "arch, size, suffix, non_square",
    [
        ("seresnet18", 64, ".pth", None),
        ("seresnext26t_32x4d", 64, ".safetensors", (65, 79)),
    ],
)
def test_parity_default_tier(timm, arch, size, suffix, non_square, tmp_path):
    _timm_parity(timm, arch, tmp_path, size, suffix, non_square)


# Networks of one unit per stage: timm's layouts at full width (with the registered model of
# the same layout), and the narrow ones the export and backend tests use.
SMALL = {
    "aa_d": (
        timm_resnet.TimmResNetSpec(
            (1, 1, 1, 1), cardinality=32, base_width=4, stem="deep", stem_width=32,
            avg_down=True, aa=True,
        ),
        "timm_seresnextaa101d_32x8d",
    ),
    "senet154": (
        timm_resnet.TimmResNetSpec(
            (1, 1, 1, 1), cardinality=64, base_width=4, stem="deep", down_kernel_size=3,
            block_reduce_first=2,
        ),
        "timm_senet154",
    ),
    **timm_small.SMALL,
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_parity_small_variants(timm, kind, tmp_path):
    from timm.models.resnet import Bottleneck, ResNet

    spec, layout = SMALL[kind]
    timm_args = timm_small.timm_arguments(spec)
    ref = ResNet(Bottleneck, spec.blocks, block_args=dict(attn_layer="se"), **timm_args)
    ref = randomize(ref, seed=5, size=64)
    path = _save(ref, tmp_path / "small.pth")
    # A spec outside the registry, built by the family's build function.
    builder = functools.partial(timm_small.build_spec, spec, layout, name="small")
    # Without anti-aliasing, 72 x 88 reaches odd sides (9 x 11 at conv4's input): the
    # shortcut pools' ceil mode; anti-aliased networks need sides that are multiples of 32.
    rows, cols = (64, 96) if spec.aa else (72, 88)
    model = _parity(builder, ref, path, rows, cols)
    assert _trainable(model) == sum(p.numel() for p in ref.parameters())


def test_walkthrough_variant_is_timm_with_plain_se(timm, tmp_path):
    """The torchvision-based SE-ResNet of the PyTorch walkthroughs: SE width C // 16, no
    biases; timm builds it with rd_divisor=1, bias=False."""
    from timm.layers import SEModule

    se = functools.partial(SEModule, rd_divisor=1, bias=False)
    ref = randomize(timm.create_model("seresnet50", block_args=dict(attn_layer=se)), 7, 64)
    path = _save(ref, tmp_path / "walkthrough.pth")
    build = functools.partial(
        se_keras.applications.TimmSEResNet50, se_options={"use_bias": False, "divisor": 1}
    )
    model = _parity(build, ref, path, 64)
    assert _trainable(model) == sum(p.numel() for p in ref.parameters())
    assert model.get_layer("conv2_block1_se").hidden == 256 // 16


@contextlib.contextmanager
def _float64():
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:  # the worker's later tests run in what was set before
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


@pytest.mark.slow
@pytest.mark.parametrize("arch", [name.removeprefix("timm_") for name in timm_resnet.SPECS])
def test_parity_every_architecture(timm, arch, tmp_path):
    """Each registered architecture built in float64 against timm's float64 result: one
    image at a non-square size (multiples of 32, which the anti-aliased ones need). In
    float32 the deepest ones differ from it by rounding of 1e-4 to 3e-4 of the scale, which
    varies with the CPU; in float64 by at most 1e-12, so a tolerance of 1e-9 leaves no room for an
    error of the architecture or the conversion. (Float32 parity: the tests above.)"""
    rows, cols = 128, 160
    ref = randomize(timm.create_model(arch), seed=len(arch), size=rows)
    path = _save(ref, tmp_path / f"{arch}.pth")
    images = np.random.default_rng(rows * cols).standard_normal((1, rows, cols, 3))
    with _float64():
        model = se_keras.applications.get_model(
            f"timm/{arch}", weights=path, classifier_activation=None, input_shape=(rows, cols, 3)
        )
        got = model.predict(images, verbose=0)
    assert got.dtype == np.float64
    expected = run(ref, images)
    scale = np.abs(expected).max()
    assert scale > 1e-3
    difference = np.abs(got - expected).max()
    print(f"{arch} float64: max difference {difference / scale:.1e} of the scale")
    assert difference <= 1e-9 * scale
    assert _trainable(model) == sum(p.numel() for p in ref.parameters())


# --------------------------------------------------------------------------------------------
# The SE width, names, and bad input
# --------------------------------------------------------------------------------------------


def test_se_width_is_timms_make_divisible(timm):
    from timm.layers import make_divisible

    for channels in range(8, 2049):
        expected = make_divisible(channels / 16, 8, round_limit=0.0)
        assert bottleneck_width(channels, 16, 8, round_limit=0.0) == expected, channels
    # 190 / 16 = 11.9 -> 8 for timm's SE; MobileNet's 0.9 limit (the layer's default) -> 16.
    layer = SqueezeExcite(divisor=8, round_limit=0.0)
    layer.build((None, 4, 4, 190))
    assert layer.hidden == 8 and SqueezeExcite.from_config(layer.get_config()).round_limit == 0
    assert bottleneck_width(190, 16, 8) == 16


@pytest.mark.parametrize("value", [-0.1, 1.5, "0", True, float("nan")])
def test_round_limit_is_checked(value):
    with pytest.raises(ValueError, match=rf"`round_limit`.*Received: round_limit={value!r}"):
        SqueezeExcite(round_limit=value)


def test_tags_carry_timms_pretrained_configs(timm):
    from timm.models import get_pretrained_cfg

    tags = [info for info in timm_resnet.WEIGHTS]
    assert {f"{i.model.removeprefix('timm_')}.{i.tag}" for i in tags} == {
        name
        for arch in timm_resnet.ALIASES
        if not arch.startswith("timm/")
        for name in timm.list_pretrained(f"{arch}.*")
    }
    for info in tags:
        cfg = get_pretrained_cfg(f"{info.model.removeprefix('timm_')}.{info.tag}").to_dict()
        ours = info.preprocessing
        assert cfg["hf_hub_id"] == info.origins[0].removeprefix("hf://")
        train = (ours["train_input_size"], ours["train_crop_pct"])
        assert train == (cfg["input_size"][-1], cfg["crop_pct"])
        test_size = (cfg.get("test_input_size") or cfg["input_size"])[-1]
        assert ours["input_size"] == test_size
        assert ours["crop_pct"] == cfg.get("test_crop_pct", cfg["crop_pct"])
        assert ours["num_classes"] == cfg["num_classes"]
        assert ours["interpolation"] == cfg["interpolation"] == "bicubic"
        assert (ours["mean"], ours["std"]) == (cfg["mean"], cfg["std"])


def test_a_tag_sets_the_input_size_of_its_top1(monkeypatch):
    from se_keras.applications import _registry

    monkeypatch.setattr(_registry, "_WEIGHTS", {k: dict(v) for k, v in _registry._WEIGHTS.items()})
    sizes = {"input_size": 288, "train_input_size": 224}
    se_keras.applications.register_weights("seresnet50", "sized", "hf://x/y", None, None, sizes)

    def shape(model_name, weights, input_shape=None):
        args = types.SimpleNamespace(
            weights=weights, input_shape=input_shape, include_top=True, input_tensor=None
        )
        entry = se_keras.applications.entry(model_name)
        return timm_resnet.input_shape(entry.spec, args, entry)

    assert shape("timm_seresnet50", "sized") == (288, 288, 3)  # where its top-1 was measured
    assert shape("timm_seresnet50", "sized", (224, 224, 3)) == (224, 224, 3)  # trained there
    with pytest.raises(ValueError, match=r"should be \(288, 288, 3\)"):
        shape("timm_seresnet50", "sized", (256, 256, 3))
    assert shape("timm_seresnet50", None) == (224, 224, 3)
    assert shape("timm_seresnextaa201d_32x8d", None) == (384, 384, 3)
    with pytest.raises(ValueError, match=r"'a1_in1k', 'a2_in1k', 'a3_in1k', 'ra2_in1k'"):
        se_keras.applications.TimmSEResNet50(weights="ra3_in1k")
    with pytest.raises(ValueError, match=r"`classes` should be 11821. Received: classes=1000"):
        se_keras.applications.TimmSEResNeXtAA101D_32x8d(weights="sw_in12k")


def test_timm_names_and_ours():
    applications = se_keras.applications
    assert applications.entry("seresnet50").name == "timm_seresnet50"
    assert applications.entry("timm/seresnext26t_32x4d").name == "timm_seresnext26t_32x4d"
    # A timm name that is also ours is ours; "timm/" asks for timm's.
    assert applications.entry("senet154").name == "senet154"
    assert applications.entry("timm/senet154").name == "timm_senet154"
    assert "seresnet50" not in applications.list_models()
    with pytest.raises(ValueError, match=r"Received: name='seresnet51'"):
        applications.get_model("seresnet51")


def test_anti_aliased_network_refuses_sizes_timm_cannot_run():
    with pytest.raises(ValueError, match=r"multiples of 8.*Received: input_shape=\(64, 72, 3\)"):
        se_keras.applications.TimmSEResNeXtAA101D_32x8d(include_top=False, input_shape=(64, 72, 3))


def test_checkpoint_of_another_architecture_names_the_tensor(timm, tmp_path):
    path = _save(timm.create_model("seresnet18"), tmp_path / "seresnet18.pth")
    with pytest.raises(ValueError, match=r"'layer1.0.conv3.weight'|'layer1.0.conv1.weight'"):
        se_keras.applications.TimmSEResNet50(weights=path, input_shape=(64, 64, 3))
    keras.backend.clear_session()


def test_se_keras_list_pretrained_shows_each_tag(capsys):
    from se_keras import cli

    assert cli.main(["list", "--pretrained", "seresnet50", "timm/senet154"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "tag", "input", "crop", "interpolation", "top-1", "source"]
    assert lines[5].split()[:6] == ["seresnet50", "ra2_in1k", "288x288", "0.95", "bicubic", "81.29"]
    assert lines[6].split()[:6] == [
        "timm/senet154",
        "gluon_in1k",
        "224x224",
        "0.875",
        "bicubic",
        "81.26",
    ]
