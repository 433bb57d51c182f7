"""Download into the Keras cache with hash checks; a failure leaves nothing behind."""

import contextlib
import hashlib
import os
import shutil
import tempfile

import keras

MIRROR_VARIABLE = "SE_KERAS_WEIGHTS_URL"


class DownloadError(OSError):
    """A weights file could not be fetched or failed its check."""


def cache_dir():
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    path = os.path.join(home, "models", "se_keras")
    os.makedirs(path, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(destination):
    """A temporary path beside `destination`, moved into place only if the block succeeds."""
    staging = tempfile.mkdtemp(prefix=".partial-", dir=os.path.dirname(destination))
    try:
        partial = os.path.join(staging, os.path.basename(destination))
        yield partial
        os.replace(partial, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def origins(info):
    mirror = os.environ.get(MIRROR_VARIABLE)
    if mirror:
        return (f"{mirror.rstrip('/')}/{info.file_name}",)
    return info.origins


class _Unreachable(Exception):
    """This origin failed; the next one may work."""


def _download(url, path):
    try:
        keras.utils.get_file(
            fname=os.path.basename(path), origin=url, cache_dir=os.path.dirname(path),
            cache_subdir="",
        )
    except Exception as error:  # get_file raises a bare Exception for HTTP errors
        raise _Unreachable(f"{url}: {error}") from None


def _verify(path, info, url):
    digest = sha256_of(path)
    if not digest.startswith(info.sha256):
        raise DownloadError(
            f"The file downloaded from {url} has sha256 {digest}, expected "
            f"{info.sha256}{'...' if len(info.sha256) < 64 else ''}: the download is corrupt "
            "or truncated, or the server holds another file. Nothing was cached."
        )


def fetch(info):
    """Path of `info`'s file in the cache, downloaded and verified if not there yet."""
    destination = os.path.join(cache_dir(), info.file_name)
    if os.path.exists(destination):
        return destination
    failures = []
    for url in origins(info):
        try:
            with atomic_path(destination) as partial:
                _download(url, partial)
                _verify(partial, info, url)
            return destination
        except _Unreachable as error:
            failures.append(str(error))
    mirror = os.environ.get(MIRROR_VARIABLE)
    raise DownloadError(
        f"Could not download the {info.tag!r} weights of {info.model} ({info.file_name}). "
        + " ".join(failures)
        + f" Set {MIRROR_VARIABLE} to a mirror that serves {info.file_name}"
        + (f" (now {mirror!r})." if mirror else ".")
    )
