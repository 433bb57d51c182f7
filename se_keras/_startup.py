"""The command line's start-up: TensorFlow loads without its native log lines.

TensorFlow's C++ side writes a few lines to the process's stderr while it loads and first
looks for devices (absl's "All log messages before absl::InitializeLog() ...", oneDNN and
CUDA notices), some of them before `TF_CPP_MIN_LOG_LEVEL` takes effect. For the `se-keras`
command only, those are written to a temporary file instead, and replayed if loading fails.
A library user's process is left as it is.
"""

import os
import sys

from se_keras.utils import native_stderr


def quiet_start():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_stderr.captured():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # the device search, and its notices, now


if os.path.basename(sys.argv[0]) == "se-keras":
    quiet_start()
