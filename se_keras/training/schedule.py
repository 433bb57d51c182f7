"""Learning-rate schedule: linear warm-up, then cosine or step decay (the paper's recipe)."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="se_keras")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`peak * step / warmup_steps` during warm-up, then cosine decay to 0 over the rest, or
    step decay (x0.1 at 50% and 75% of training; the paper divides by 10 every 30 epochs)."""

    def __init__(self, peak, warmup_steps, total_steps, decay="cosine"):
        self.peak, self.warmup_steps, self.total_steps, self.decay = (
            float(peak),
            int(warmup_steps),
            int(total_steps),
            decay,
        )

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = self.peak * (step + 1) / max(self.warmup_steps, 1)
        progress = ops.clip(
            (step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0
        )
        if self.decay == "cosine":
            decayed = 0.5 * self.peak * (1 + ops.cos(math.pi * progress))
        else:
            decayed = self.peak * ops.where(
                progress < 0.5, 1.0, ops.where(progress < 0.75, 0.1, 0.01)
            )
        return ops.where(step < self.warmup_steps, warmup, decayed)

    def get_config(self):
        return dict(
            peak=self.peak,
            warmup_steps=self.warmup_steps,
            total_steps=self.total_steps,
            decay=self.decay,
        )
