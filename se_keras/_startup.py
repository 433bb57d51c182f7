"""The command line's start-up: TensorFlow loads without its native log lines.

TensorFlow's C++ side writes a few lines to the process's stderr while it loads and first
looks for devices (absl's "All log messages before absl::InitializeLog() ...", oneDNN and
CUDA notices), some of them before `TF_CPP_MIN_LOG_LEVEL` takes effect. For the `se-keras`
command only, those are written to a temporary file instead, and replayed if loading fails.
A library user's process is left as it is.
"""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def _native_stderr_captured():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def quiet_start():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _native_stderr_captured():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # the device search, and its notices, now


if os.path.basename(sys.argv[0]) == "se-keras":
    quiet_start()
