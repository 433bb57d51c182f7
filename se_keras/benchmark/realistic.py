"""Models to measure exports and runtimes on: random weights whose outputs mean something
(random BatchNorm statistics, He-scaled kernels without BatchNorm), and a small model
trained on the bundled digits (for the agreement of quantized files on real images)."""

import keras
import numpy as np

from se_keras import applications, data


def randomize_batch_norm(model, seed=0):
    """Random BatchNorm parameters and moving statistics, so that the inference path is
    not the identity and outputs stay of order one."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape
            if layer.scale:  # Inception's BatchNorm has no scale
                layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            if layer.center:
                layer.beta.assign(rng.normal(0, 0.2, n))
            layer.moving_mean.assign(rng.normal(0, 0.2, n))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, n))


def realistic_model(name, size=None, classes=10, seed=0):
    """`name` with random weights whose outputs are of order one (logits, no softmax): what
    an export or a runtime is compared on."""
    options = {"input_shape": (size, size, 3)} if size else {}
    model = applications.get_model(
        name, weights=None, classes=classes, classifier_activation=None, **options
    )
    randomize_batch_norm(model, seed)
    if any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers):
        return model
    # He-scaled kernels keep activations of order one through networks without BatchNorm
    # (VGG): with Glorot's initialiser its logits are ~1e-8 and a comparison means nothing.
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            fan_in = np.prod(layer.kernel.shape[:-1])
            layer.kernel.assign(rng.normal(0, np.sqrt(2 / fan_in), layer.kernel.shape))
    return model


class _StopAtAccuracy(keras.callbacks.Callback):
    def __init__(self, target):
        super().__init__()
        self.target = target

    def on_epoch_end(self, epoch, logs=None):
        if logs["val_accuracy"] >= self.target:
            self.model.stop_training = True


def digits_model(target=0.95, max_epochs=20):
    """SE-ResNet-18 trained on the bundled digits until its held-out accuracy reaches
    `target`: (model, calibration images, held-out test images, their labels).

    Trained to an accuracy, not for a fixed number of epochs: CPU training is not
    bit-reproducible, and five epochs gave 0.96-0.975 here but 0.88 on the CI machine
    (BatchNorm's moving statistics still carried a third of their initial values)."""
    preprocess = applications.family_module("se_resnet18").preprocess_input
    train = data.make_dataset("digits", "train", 32, 64, preprocess, training=True, seed=0)
    test_images, test_labels = next(
        iter(data.make_dataset("digits", "test", 32, 360, preprocess, training=False))
    )
    test_images, test_labels = test_images.numpy(), test_labels.numpy()
    calibration = np.concatenate([images for images, _ in train.take(4)])
    keras.utils.set_random_seed(0)
    model = applications.get_model("se_resnet18", weights=None, input_shape=(32, 32, 3), classes=10)
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        train,
        epochs=max_epochs,
        shuffle=False,  # the dataset shuffles
        validation_data=(test_images, test_labels),
        callbacks=[_StopAtAccuracy(target)],
        verbose=0,
    )
    accuracy = history.history["val_accuracy"][-1]
    if accuracy < target:
        raise RuntimeError(
            f"the digits model reached a held-out accuracy of {accuracy:.4f} in {max_epochs} "
            f"epochs, short of {target}"
        )
    return model, calibration, test_images, test_labels
