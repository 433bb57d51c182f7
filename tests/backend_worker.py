"""One backend's side of tests/test_backends.py. The backend is fixed when keras is imported,
so the test runs this script once per backend with KERAS_BACKEND set:

    KERAS_BACKEND=jax python tests/backend_worker.py DIR [--source BACKEND] NAME:SIZE[:STEPS] ...

For each model, on the input DIR/NAME.input.npy (written by the test), into DIR/BACKEND/:

- without --source: build it (weights=None, seeded, logits out) and `condition` its weights;
  with --source: load DIR/SOURCE/NAME.keras, and also build it afresh and load
  DIR/SOURCE/NAME.weights.h5 into it (output NAME.h5.npy).
  Models are taken in order as the source worker marks them done, so the backends overlap.
- save NAME.keras and NAME.weights.h5 (without --source; with it, NAME.keras only for STEPS
  "s"), before any training; predict with the backend's default compilation (NAME.out.npy;
  jit on JAX, none on TensorFlow on CPU and on torch), then mark NAME.done.
- STEPS "j": predict again compiled with `jit_compile=True` (NAME.jit.npy); "f": one `fit`
  step compiled the backend's default way, "x": with `jit_compile=True`; results.json
  records its loss and which trainable weights it left unchanged.
"""

import argparse
import json
import os
import time

import keras
import numpy as np
import timm_small  # tests/timm_small.py: this script's folder comes first on sys.path

from se_keras.applications import get_model

BACKEND = keras.backend.backend()
WAIT_SECONDS = 1800  # for the source worker to mark a model done


def build(name, size):
    """A registered model, or one of timm_small's (the names of `timm_small.SMALL`)."""
    keras.utils.set_random_seed(0)
    make = timm_small.build if name in timm_small.SMALL else get_model
    return make(
        name, weights=None, input_shape=(size, size, 3), classes=10, classifier_activation=None
    )


def condition(model, x, seed=0):
    """Random weights that behave like trained ones: activations of order one, outputs that
    depend on the input, a gradient for every weight.

    With BatchNorm: random scales and offsets; moving statistics measured on 8 other random
    images (one training-mode pass with momentum 0), so inference BatchNorm is neither the
    identity nor a normalisation by `x`'s own statistics; each moving variance then raised
    by half the layer's mean variance. A random BatchNorm network is chaotic (each layer
    amplifies perturbations, Yang et al. 2019): float32 rounding would grow ~1000-fold with
    depth (XLA vs non-compiled SENet-154: 4e-4 without the raise, 2e-6 with it), while two
    inputs still give outputs 0.1-1 apart. Without BatchNorm (VGG): each kernel scaled for
    outputs of unit spread on `x` (LSUV, Mishkin & Matas 2016); else 13 ReLUs and SE gates
    shrink the logits to ~1e-7.
    """
    rng = np.random.default_rng(seed)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        kernels = [
            layer
            for layer in model.layers
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
        ]
        probe = keras.Model(model.input, [layer.output for layer in kernels])
        for i, layer in enumerate(kernels):
            layer.kernel.assign(layer.kernel / np.std(keras.ops.convert_to_numpy(probe(x)[i])))
        return
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        n = layer.moving_mean.shape
        if layer.scale:
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
        if layer.center:
            layer.beta.assign(rng.normal(0, 0.2, n))
        layer.momentum = 0.0
    model(rng.uniform(-1, 1, (8, *x.shape[1:])).astype(x.dtype), training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
        variance = keras.ops.convert_to_numpy(layer.moving_variance)
        layer.moving_variance.assign(variance + 0.5 * variance.mean())


def predict(model, x, jit_compile="auto"):
    model.compile(jit_compile=jit_compile)
    return np.asarray(model.predict(x, batch_size=len(x), verbose=0)), bool(model.jit_compile)


def fit_step(model, x, jit_compile):
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    history = model.fit(x, np.arange(len(x)) % 10, batch_size=len(x), epochs=1, verbose=0)
    unchanged = [
        w.path
        for w, b in zip(model.trainable_weights, before)
        if np.array_equal(keras.ops.convert_to_numpy(w), b)
    ]
    return {
        "loss": float(history.history["loss"][0]),
        "fit_jit": bool(model.jit_compile),
        "unchanged": unchanged,
        "trainable": len(before),
    }


def wait_for(path):
    deadline = time.time() + WAIT_SECONDS
    while not os.path.exists(path):
        if time.time() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.5)


def run(args, name, size, steps):
    out, source = (
        os.path.join(args.dir, BACKEND),
        args.source and os.path.join(args.dir, args.source),
    )
    x = np.load(os.path.join(args.dir, f"{name}.input.npy"))
    result, start, cpu = {"name": name, "size": size}, time.perf_counter(), time.process_time()
    if source is None:
        model = build(name, size)
        condition(model, x)
    else:
        wait_for(os.path.join(source, f"{name}.done"))
        start, cpu = time.perf_counter(), time.process_time()
        model = keras.saving.load_model(os.path.join(source, f"{name}.keras"))
        fresh = build(name, size)
        fresh.load_weights(os.path.join(source, f"{name}.weights.h5"))
        np.save(os.path.join(out, f"{name}.h5.npy"), predict(fresh, x)[0])
        del fresh
    if source is None or "s" in steps:
        model.save(os.path.join(out, f"{name}.keras"))
    if source is None:
        model.save_weights(os.path.join(out, f"{name}.weights.h5"))
    y, result["predict_jit"] = predict(model, x)
    np.save(os.path.join(out, f"{name}.out.npy"), y)
    open(os.path.join(out, f"{name}.done"), "w").close()
    if "j" in steps:
        y_jit, result["jit_predict_jit"] = predict(model, x, jit_compile=True)
        np.save(os.path.join(out, f"{name}.jit.npy"), y_jit)
    if "f" in steps or "x" in steps:
        result.update(fit_step(model, x, True if "x" in steps else "auto"))
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["cpu_seconds"] = round(time.process_time() - cpu, 1)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("models", nargs="+", help="NAME:SIZE[:STEPS]")
    parser.add_argument("--source")
    args = parser.parse_args()
    os.makedirs(os.path.join(args.dir, BACKEND), exist_ok=True)
    results = []
    for spec in args.models:
        name, size, steps = (spec + ":").split(":")[:3]
        results.append(run(args, name, int(size), steps))
        keras.backend.clear_session()
    with open(os.path.join(args.dir, BACKEND, "results.json"), "w") as file:
        json.dump(
            {"backend": BACKEND, "models": results, "cpu_seconds": round(time.process_time(), 1)},
            file,
            indent=1,
        )


if __name__ == "__main__":
    main()
