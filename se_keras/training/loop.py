"""`model.fit` and `model.evaluate`, or, under MultiWorkerMirroredStrategy, a custom loop.

Keras 3's fit and evaluate do not run under MultiWorkerMirroredStrategy (keras-team/keras#20585):
before the first step they pass a whole (images, labels) batch to the strategy's `reduce`, which
takes single values there ("Attempt to convert a value (PerReplica...)"), and after each step
they reduce the scalar metrics along an axis 0 they do not have. The loop below runs the model's
own `train_step` / `test_step` (the compiled loss with its label smoothing, the optimizer with
its weight decay, which all-reduces the gradients in the replica context, the metrics) under
`strategy.run`, and drives the same callbacks as fit, in fit's order, with fit's logs.
"""

import keras


def multiworker_strategy(model):
    """The model's MultiWorkerMirroredStrategy, or None when it is built under another one."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    strategy = model.distribute_strategy
    return strategy if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) else None


def fit(model, data, epochs, initial_epoch=0, validation_data=None, callbacks=(), verbose="auto"):
    """`model.fit(data, ...)`, under any strategy. Returns the History."""
    strategy = multiworker_strategy(model)
    if strategy is None:
        # shuffle=False: the tf.data pipeline shuffles (fit's default would only warn).
        return model.fit(
            data,
            validation_data=validation_data,
            epochs=epochs,
            shuffle=False,
            initial_epoch=initial_epoch,
            callbacks=list(callbacks),
            verbose=verbose,
        )
    step = _step_function(strategy, model.train_step)
    test_step = _step_function(strategy, model.test_step)
    average_statistics = _averaging_function(model, strategy)
    steps = int(data.cardinality())  # global batches: the steps of every worker
    data = _distribute(strategy, data)
    if validation_data is not None:
        validation_data = _distribute(strategy, validation_data)
    callbacks = keras.callbacks.CallbackList(
        list(callbacks),
        add_history=True,
        add_progbar=verbose != 0,
        verbose=1 if verbose == "auto" else verbose,
        epochs=epochs,
        steps=steps if steps >= 0 else None,
        model=model,
    )
    model.stop_training = False
    callbacks.on_train_begin()
    logs = None
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callbacks.on_epoch_begin(epoch)
        for index, batch in enumerate(data):
            callbacks.on_train_batch_begin(index)
            callbacks.on_train_batch_end(index, step(batch))
            if model.stop_training:
                break
        average_statistics()
        # Read in the cross-replica context, the metric variables sum over all workers.
        logs = model.get_metrics_result()
        if validation_data is not None:
            val_logs = _evaluate(model, test_step, validation_data, callbacks)
            logs.update({f"val_{name}": value for name, value in val_logs.items()})
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_weights)
    callbacks.on_train_end(logs=logs)
    return model.history


def evaluate(model, data):
    """`model.evaluate(data, return_dict=True, verbose=0)`, under any strategy."""
    strategy = multiworker_strategy(model)
    if strategy is None:
        return model.evaluate(data, return_dict=True, verbose=0)
    step = _step_function(strategy, model.test_step)
    callbacks = keras.callbacks.CallbackList(model=model)
    return _evaluate(model, step, _distribute(strategy, data), callbacks)


def _evaluate(model, step, data, callbacks):
    callbacks.on_test_begin()
    model.reset_metrics()
    for index, batch in enumerate(data):
        callbacks.on_test_batch_begin(index)
        callbacks.on_test_batch_end(index, step(batch))
    logs = model.get_metrics_result()
    callbacks.on_test_end(logs)
    return logs


def _step_function(strategy, step):
    import tensorflow as tf

    @tf.function
    def run(batch):
        # The replicas' running metrics, averaged (what fit shows per batch); the epoch's
        # figures are read from the metric variables afterwards.
        logs = strategy.run(step, args=(batch,))
        return {name: strategy.reduce("MEAN", value, axis=None) for name, value in logs.items()}

    return run


def _averaging_function(model, strategy):
    """Keras' BatchNormalization updates its moving statistics on each replica alone (their
    variables have no aggregation). Averaging them over all replicas at the end of every epoch
    leaves every worker with the same model: the one the chief checkpoints and saves, and the
    one each worker evaluates its share of the test data with."""
    import tensorflow as tf

    statistics = [v for v in model.non_trainable_variables if "float" in str(v.dtype)]

    def average():
        context = tf.distribute.get_replica_context()
        means = context.all_reduce("MEAN", [tf.identity(v.value) for v in statistics])
        for variable, mean in zip(statistics, means):
            variable.assign(mean)

    return tf.function(lambda: strategy.run(average))


def _distribute(strategy, data):
    """Each worker takes its share of every global batch (sharding by data, as the bundled
    datasets are single files), so every worker must produce the batches in the same order."""
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(data.with_options(options))
