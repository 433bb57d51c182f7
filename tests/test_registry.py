"""The registry: every declared figure is what the built model has; names are unique."""

import keras
import numpy as np
import pytest

import se_keras
from se_keras import applications
from se_keras.utils.flops import count_macs

# Every model the project declares, named here so that a model that drops out of the
# registry fails this test instead of silently leaving every registry-driven test.
DECLARED = [
    "se_bn_inception", "se_inception_resnet_v2", "se_inception_v3", "se_mobilenet",
    "se_mobilenet_v2", "se_resnet18", "se_resnet34", "se_resnet50", "se_resnet101",
    "se_resnet152", "se_resnext50", "se_resnext101", "se_shufflenet", "se_shufflenet_v2",
    "se_vgg16", "se_vgg19", "senet154", "timm_senet154", "timm_seresnet18", "timm_seresnet34",
    "timm_seresnet50", "timm_seresnet101", "timm_seresnet152", "timm_seresnet152d",
    "timm_seresnext26d_32x4d", "timm_seresnext26t_32x4d", "timm_seresnext50_32x4d",
    "timm_seresnext101_32x4d", "timm_seresnext101_32x8d", "timm_seresnext101_64x4d",
    "timm_seresnext101d_32x8d", "timm_seresnextaa101d_32x8d", "timm_seresnextaa201d_32x8d",
]  # fmt: skip
# timm's family beyond two cheap representatives: their figures (parameter counts also
# equal to timm's, tests/test_timm_resnet.py) are rechecked in the exhaustive tier only.
HEAVY = {name for name in DECLARED if name.startswith("timm_")} - {
    "timm_seresnet18", "timm_seresnext26t_32x4d",
}  # fmt: skip


def test_the_registry_holds_the_declared_models():
    assert applications.list_models() == DECLARED
    assert applications.list_models(pretrained=True) == [
        "se_resnet18", "se_resnet34", "se_resnet50", "se_resnet101", "se_resnet152",
        "se_resnext50", "se_resnext101", "senet154", "timm_senet154", "timm_seresnet50",
        "timm_seresnet152d", "timm_seresnext26d_32x4d", "timm_seresnext26t_32x4d",
        "timm_seresnext50_32x4d", "timm_seresnext101_32x4d", "timm_seresnext101_32x8d",
        "timm_seresnext101_64x4d", "timm_seresnext101d_32x8d", "timm_seresnextaa101d_32x8d",
        "timm_seresnextaa201d_32x8d",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.exhaustive) if n in HEAVY else n for n in DECLARED]
)
def test_recorded_figures_are_the_built_models(name):
    entry = applications.entry(name)
    model = applications.get_model(name, weights=None)
    assert model.name.startswith(name) and model.input.shape[1:] == (entry.default_size,) * 2 + (3,)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == entry.params
    assert count_macs(model) == entry.macs
    del model
    keras.backend.clear_session()
    side = entry.min_size
    headless = applications.get_model(
        name, weights=None, include_top=False, input_shape=(side, side, 3)
    )
    assert headless.output.shape[-1] == entry.features
    with pytest.raises(ValueError, match=f"at least {side}x{side}"):
        applications.get_model(
            name, weights=None, include_top=False, input_shape=(side - 1, side - 1, 3)
        )
    keras.backend.clear_session()


def test_registered_weights_are_offered_by_the_builders():
    for name in applications.list_models():
        family = applications.family_module(name)
        assert any(entry.name == name for entry in family.MODELS)
        assert callable(family.preprocess_input) and family.PREPROCESS_MODE
    assert "imagenet_base" in applications.tags("se_mobilenet")
    assert "imagenet_base" not in applications.tags("se_resnet50")


def test_register_weights_refuses_unknown_models_and_the_reserved_tag():
    with pytest.raises(ValueError, match=r"Received: model_name='se_resnet9'"):
        applications.register_weights("se_resnet9", "t", "http://127.0.0.1/x.pth", "ab" * 4)
    with pytest.raises(ValueError, match=r"reserved. Received: tag='imagenet_base'"):
        applications.register_weights("se_vgg16", "imagenet_base", "http://127.0.0.1/x", "ab" * 4)


def test_the_weights_package_imports_nothing_from_applications():
    import ast
    import pathlib

    for path in pathlib.Path(se_keras.weights.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("se_keras.applications"), path
                names = {alias.name for alias in node.names}
                assert not (node.module == "se_keras" and "applications" in names), path


def test_the_readme_model_table_is_what_se_keras_list_prints():
    import pathlib

    from se_keras import cli

    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    rows = cli._model_table(applications.list_models())
    table = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    table += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    assert "\n".join(table) in readme
