"""Silencing what native libraries (TensorFlow, LiteRT) write straight to file descriptor 2,
below Python's `sys.stderr`, where no logging setting reaches."""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def captured():
    """Within the block, the process's stderr goes to a temporary file, which is replayed if
    the block raises (so an error's native explanation is not lost) and dropped otherwise."""
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
