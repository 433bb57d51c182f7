"""Writing files so that a failure, even `kill -9`, leaves nothing behind for long.

Everything se-keras writes (downloads, converted weights, exports) is made in a staging
folder beside its destination and moved into place only when complete. A staging folder is
named after the process that made it (`.partial-<pid>-...`); one whose process is gone is
left over from a killed run and is removed the next time a file is staged in that folder.
"""

import contextlib
import os
import shutil
import tempfile
import time
import zipfile

import keras

from se_keras.utils.validation import first_line

PREFIX = ".partial-"
_LEGACY_AGE = 3600  # seconds: staging folders that name no process are removed this old


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _stale(path, name):
    pid = name[len(PREFIX) :].split("-", 1)[0]
    if pid.isdigit():
        return int(pid) != os.getpid() and not _process_alive(int(pid))
    return time.time() - os.path.getmtime(path) > _LEGACY_AGE


def remove_stale_staging(folder):
    """Remove the staging folders in `folder` whose process no longer runs."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.startswith(PREFIX) and entry.is_dir(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    if _stale(entry.path, entry.name):
                        shutil.rmtree(entry.path, ignore_errors=True)


@contextlib.contextmanager
def staging_folder(parent=None):
    """A fresh folder in `parent` (default: the system's temporary folder), removed at the
    end of the block whatever happens; stale ones of killed processes go first."""
    parent = parent or tempfile.gettempdir()
    os.makedirs(parent, exist_ok=True)
    remove_stale_staging(parent)
    staging = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(destination, companions=()):
    """A temporary path beside `destination`, moved into place only if the block succeeds.

    `companions`: suffixes of files the block writes beside the temporary path (OpenVINO's
    `.bin` next to its `.xml`); each replaces the destination's suffix and moves with it,
    before it, so that the main file never appears without them.
    """
    with staging_folder(os.path.dirname(os.path.abspath(destination))) as staging:
        partial = os.path.join(staging, os.path.basename(destination))
        yield partial
        for suffix in companions:
            os.replace(
                os.path.splitext(partial)[0] + suffix, os.path.splitext(destination)[0] + suffix
            )
        if os.path.isdir(destination) and not os.path.islink(destination):
            shutil.rmtree(destination)  # a SavedModel folder being replaced
        os.replace(partial, destination)


def companion_paths(path, companions):
    """`path` and the files with the same stem and each of the `companions` suffixes."""
    stem = os.path.splitext(path)[0]
    return [path, *(stem + suffix for suffix in companions)]


def load_keras_file(path, compile=False):
    """`keras.saving.load_model(path)` with errors that say what is wrong with the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"No such model file: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a .keras file (those are zip archives); it is damaged?")
    try:
        return keras.saving.load_model(path, compile=compile)
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"Could not load the model in {path}: {first_line(error)}") from None
