"""keras-tuner search: SEHyperModel's space and its fixing, the resumable `se-keras tune`."""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import keras
import keras_tuner as kt
import pytest

import se_keras.tuning
from se_keras import cli
from se_keras.layers import SqueezeExcite
from se_keras.training import evaluate
from se_keras.tuning import SEHyperModel, TuneConfig, space, tune

# A search that learns something in one short epoch: SE-ResNet-18 at 32x32, AdamW at 1e-3,
# batches of 16, no XLA (its compile time would dominate). The SE options stay searched.
FAST = dict(
    models=["se_resnet18"],
    epochs=1,
    batch_size=16,
    jit_compile=False,
    fixed={"optimizer": "adamw", "learning_rate": 1e-3},
)
FAST_ARGS = [
    "--model",
    "se_resnet18",
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--no-xla",
    "--fix",
    "optimizer=adamw",
    "--fix",
    "learning_rate=0.001",
]


@pytest.fixture(scope="module")
def two_trials(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    config = TuneConfig(max_trials=2, data_dir=str(root / "tfds"), **FAST)
    out = str(root / "out")
    return config, out, tune(config, out)


def _se_layers(model):
    return [layer for layer in model.layers if isinstance(layer, SqueezeExcite)]


def _is_progress(line):
    """A line `se-keras tune` prints when a trial ends: "trial 2 (se_resnet18): ..."."""
    return re.match(r"trial \d+ \(", line) is not None


def _trial_files(out, trial_ids):
    """{path: (mtime, content)} of every file of the given trials."""
    files = {}
    for trial_id in trial_ids:
        for path in sorted(glob.glob(os.path.join(out, "search", f"trial_{trial_id}", "*"))):
            with open(path, "rb") as file:
                files[path] = (os.stat(path).st_mtime_ns, file.read())
    return files


def test_two_trial_search_returns_the_best_model(two_trials):
    config, out, result = two_trials
    assert [t["status"] for t in result.trials] == ["COMPLETED", "COMPLETED"]
    assert result.trials[0]["hyperparameters"] != result.trials[1]["hyperparameters"]
    best = max(result.trials, key=lambda t: t["score"])
    assert (result.best_trial_id, result.best_score) == (best["trial_id"], best["score"])

    # The saved hyper-parameters are the ones keras-tuner reports as best.
    reported = result.tuner.get_best_hyperparameters(1)[0].values
    with open(os.path.join(out, "best_hyperparameters.json")) as file:
        saved = json.load(file)
    assert saved["hyperparameters"] == reported == best["hyperparameters"]
    assert (
        saved["trial_id"] == result.tuner.oracle.get_best_trials(1)[0].trial_id == best["trial_id"]
    )

    # The saved model is that network ...
    model = keras.saving.load_model(os.path.join(out, "best_model.keras"))
    hp = reported
    layers = _se_layers(model)
    assert model.name == hp["model"] and layers
    assert {(l.ratio, l.pooling, l.gate) for l in layers} == {
        (hp["se_ratio"], hp["se_pooling"], hp["se_gate"])
    }
    assert {int(l.name[4]) for l in layers} == set(space.parse_stages(hp["se_stages"]))
    # ... with the trained weights: on the test images it scores what the search reported,
    # measured independently by `evaluate` (the family's normalisation, the test split).
    measured = evaluate(
        "se_resnet18", os.path.join(out, "best_model.keras"), "digits", data_dir=config.data_dir
    )
    assert measured["top1"] == pytest.approx(result.best_score, abs=1e-4)
    assert result.best_score > 0.3  # it learned: chance is 0.1


def test_more_trials_resume_and_run_only_the_new_one(two_trials, tmp_path, capsys):
    config, first, result = two_trials
    out = str(tmp_path / "extended")
    shutil.copytree(first, out)
    before = _trial_files(out, ("0", "1"))
    assert len(before) == 6  # trial.json, the checkpoint and the build config of each

    code = cli.main(
        [
            "tune",
            *FAST_ARGS,
            "--max-trials",
            "3",
            "--output-dir",
            out,
            "--data-dir",
            config.data_dir,
        ]
    )
    stdout = capsys.readouterr().out.splitlines()
    assert code == 0
    # One trial ran (the progress lines), the table lists all three.
    assert [line.split(":")[0] for line in stdout if _is_progress(line)] == [
        "trial 2 (se_resnet18)"
    ]
    table = [line.split() for line in stdout if line[:1].isdigit()]
    assert [row[0] for row in table] == ["0", "1", "2"]
    for row, trial in zip(table, result.trials):
        assert row[-1] == f"{trial['score']:.4f}"
    assert stdout[-1].startswith(f"ran 1 trial (2 already in {out}); best: trial ")

    folders = sorted(os.path.basename(p) for p in glob.glob(os.path.join(out, "search", "trial_*")))
    assert folders == ["trial_0", "trial_1", "trial_2"]
    with open(os.path.join(out, "search", "oracle.json")) as file:
        assert json.load(file)["end_order"] == ["0", "1", "2"]
    assert _trial_files(out, ("0", "1")) == before  # the first two were not re-run


def _sampled_values(hypermodel, tmp_path, hp=None, count=4):
    """Values of `count` trials a random-search oracle proposes for `hypermodel` (nothing
    is trained)."""
    tuner = kt.RandomSearch(
        hypermodel,
        objective="val_accuracy",
        max_trials=count,
        seed=1,
        hyperparameters=hp,
        directory=str(tmp_path),
        project_name="space",
    )
    return [tuner.oracle.create_trial(f"tuner{i}").hyperparameters.values for i in range(count)]


def test_hp_fixed_constrains_the_space(tmp_path):
    hp = kt.HyperParameters()
    hp.Fixed("model", "se_shufflenet")
    hp.Fixed("se_ratio", 8)
    hp.Fixed("alpha", 0.5)  # conditional in the space: fixed here outside its scope
    hypermodel = SEHyperModel()

    sampled = _sampled_values(hypermodel, tmp_path, hp)
    assert {(v["model"], v["se_ratio"], v["alpha"]) for v in sampled} == {("se_shufflenet", 8, 0.5)}
    assert len({v["learning_rate"] for v in sampled}) == len(sampled)  # the rest is searched
    assert all("se_stages" not in v for v in sampled)  # no ResNet: no ResNet options

    values = dict(sampled[0])
    trial_hp = kt.HyperParameters()
    for name, value in values.items():
        trial_hp.Fixed(name, value)
    model = hypermodel.build(trial_hp)
    assert model.name == "se_shufflenet_g3_0.50_32"
    assert {(l.ratio, l.pooling, l.gate) for l in _se_layers(model)} == {
        (8, values["se_pooling"], values["se_gate"])
    }


def test_constructor_fixed_constrains_the_space(tmp_path):
    fixed = {
        "model": "se_resnet18",
        "se_ratio": 32,
        "se_stages": (4,),
        "se_position": "post",
        "se_pooling": "max",
        "optimizer": "sgd",
    }
    hypermodel = SEHyperModel(fixed=fixed, jit_compile=True)
    assert hypermodel.fixed["se_stages"] == "4"

    sampled = _sampled_values(hypermodel, tmp_path)
    expected = {**fixed, "se_stages": "4"}
    assert all({k: v[k] for k in expected} == expected for v in sampled)
    assert len({v["learning_rate"] for v in sampled}) == len(sampled)  # the rest is searched

    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    assert {type(h).__name__ for h in hp.space if h.name in fixed} == {"Fixed"}
    layers = _se_layers(model)
    # SE in conv4_x only (two units), after the addition (its input is the unit's output).
    assert [l.name for l in layers] == ["conv4_block1_se", "conv4_block2_se"]
    assert all(l.input is model.get_layer(l.name.replace("_se", "_out")).output for l in layers)
    assert {(l.ratio, l.pooling) for l in layers} == {(32, "max")}
    assert isinstance(model.optimizer, keras.optimizers.SGD) and model.jit_compile


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_shape=(16, 16, 3)), "input_shape=(16, 16, 3)"),
        (dict(num_classes=0), "num_classes=0"),
        (dict(models=["se_inception_v3"]), "not 'se_inception_v3'"),
        (dict(models=[]), "models=[]"),
        (dict(fixed={"ratio": 8}), "unknown hyper-parameter 'ratio'"),
        (dict(fixed={"se_gate": "softmax"}), "se_gate='softmax'"),
        (dict(fixed={"se_ratio": 0}), "se_ratio=0"),
        (dict(fixed={"se_stages": (1, 2)}), "se_stages='1,2'"),
        (dict(fixed={"alpha": 0.75}), "alpha=0.75"),
        (dict(models=["se_mobilenet"], fixed={"se_position": "pre"}), "'se_position' applies to"),
        (dict(models=["se_resnet18"], fixed={"model": "se_resnet50"}), "model='se_resnet50'"),
        (dict(epochs=2), "steps_per_epoch=None"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match="Invalid value for argument|Pass both") as error:
        SEHyperModel(**kwargs)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tuner", "grid"], "tuner='grid'"),
        (["--max-trials", "0"], "max_trials=0"),
        (["--model", "resnet9"], "not 'resnet9'"),
        (["--epochs", "0"], "epochs=0"),
        (["--image-size", "16"], "image_size=16"),
        (["--fix", "se_ratio"], "--fix expects NAME=VALUE"),
        (["--fix", "ratio=8"], "unknown hyper-parameter 'ratio'"),
        (["--batch-size", "5000"], "larger than the 1437 train examples"),
        (["--dataset", "no_such_dataset"], "Unknown dataset 'no_such_dataset'"),
    ],
)
def test_bad_options_are_one_line_and_leave_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code = cli.main(["tune", *args, "--output-dir", str(out), "--data-dir", str(tmp_path / "tfds")])
    captured = capsys.readouterr()
    error = captured.err.strip().splitlines()
    assert code == 1 and len(error) == 1 and message in error[0], captured.err
    assert error[0].startswith("se-keras tune: error: ") and "trial" not in captured.out
    assert not out.exists()


def test_a_different_search_cannot_reuse_the_folder(two_trials, capsys):
    config, out, _ = two_trials
    before = sorted(os.listdir(out))
    code = cli.main(
        ["tune", *FAST_ARGS, "--epochs", "2", "--output-dir", out, "--data-dir", config.data_dir]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(error) == 1 and "differs in: epochs" in error[0]
    assert sorted(os.listdir(out)) == before


def test_failed_trials_are_reported_in_one_line(monkeypatch, tmp_path, capsys):
    from se_keras.tuning import search

    def out_of_memory(self, hp, model, *args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(search._DataHyperModel, "fit", out_of_memory)
    out = tmp_path / "out"
    code = cli.main(
        [
            "tune",
            *FAST_ARGS,
            "--max-trials",
            "2",
            "--output-dir",
            str(out),
            "--data-dir",
            str(tmp_path / "tfds"),
        ]
    )
    captured = capsys.readouterr()
    progress = [line for line in captured.out.splitlines() if _is_progress(line)]
    assert [line.split(" [")[0] for line in progress] == [
        f"trial {i} (se_resnet18): failed: RuntimeError: out of memory (simulated)" for i in (0, 1)
    ]
    errors = [line for line in captured.err.splitlines() if line.startswith("se-keras")]
    assert code == 1 and errors == [
        f"se-keras tune: error: no trial in {out} completed (the last one: RuntimeError: out of "
        "memory (simulated))"
    ]
    assert not (out / "best_model.keras").exists()


def test_bad_option_from_the_shell_has_no_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "se_keras.cli", "tune", "--tuner", "grid"],
        capture_output=True,
        text=True,
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("se-keras")]
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert errors == [
        "se-keras tune: error: Invalid value for argument `tuner`: expected one of "
        "['random', 'bayesian', 'hyperband']. Received: tuner='grid'"
    ]


def test_missing_keras_tuner_gives_the_install_hint(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "keras_tuner", None)  # `import keras_tuner` fails
    for name in ("hypermodel", "search"):
        monkeypatch.delitem(sys.modules, f"se_keras.tuning.{name}", raising=False)
        monkeypatch.delattr(se_keras.tuning, name, raising=False)
    code = cli.main(
        ["tune", "--output-dir", str(tmp_path / "out"), "--data-dir", str(tmp_path / "tfds")]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(error) == 1 and "pip install 'se-keras[tune]'" in error[0]


@pytest.mark.slow
@pytest.mark.parametrize("tuner", ["bayesian", "hyperband"])
def test_other_tuners_search_and_extend(tuner, tmp_path, capsys):
    out, data_dir = str(tmp_path / "out"), str(tmp_path / "tfds")
    args = [
        "tune",
        "--tuner",
        tuner,
        "--model",
        "se_resnet18",
        "se_shufflenet_v2",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--no-xla",
        "--output-dir",
        out,
        "--data-dir",
        data_dir,
    ]
    assert cli.main([*args, "--max-trials", "2"]) == 0
    assert cli.main([*args, "--max-trials", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in lines if _is_progress(line)] == [
        "trial 0",
        "trial 1",
        "trial 2",
    ]
    assert lines[-1].startswith(f"ran 1 trial (2 already in {out}); best: trial ")
    assert os.path.exists(os.path.join(out, "best_model.keras"))


@pytest.mark.slow
def test_search_killed_mid_trial_resumes_that_trial(tmp_path):
    out, data_dir = str(tmp_path / "out"), str(tmp_path / "tfds")
    command = [
        sys.executable,
        "-m",
        "se_keras.cli",
        "tune",
        *FAST_ARGS,
        "--max-trials",
        "2",
        "--output-dir",
        out,
        "--data-dir",
        data_dir,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    first = next(line for line in process.stdout if _is_progress(line))  # trial 1 starts now
    time.sleep(5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert first.startswith("trial 0 (se_resnet18): val_accuracy")
    before = _trial_files(out, ("0",))
    assert not os.path.exists(os.path.join(out, "best_model.keras"))

    result = subprocess.run(command, capture_output=True, text=True, check=True)
    progress = [line for line in result.stdout.splitlines() if _is_progress(line)]
    assert [line.split(":")[0] for line in progress] == ["trial 1 (se_resnet18)"]
    assert f"ran 1 trial (1 already in {out})" in result.stdout
    assert os.path.exists(os.path.join(out, "best_model.keras"))
    assert _trial_files(out, ("0",)) == before
