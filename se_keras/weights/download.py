"""Download into the Keras cache with hash checks; a failure leaves nothing behind.

Every cached file is checked before it is used. The sha256 of a file that was checked is
recorded beside it (`<file>.sha256`, with its size and modification time), so a later use
re-hashes it only when the file has changed since.
"""

import hashlib
import http.client
import json
import os
import shutil
import urllib.error
import urllib.request

from se_keras.utils.files import atomic_path

TIMEOUT = 60  # seconds without a byte before an origin counts as unreachable

MIRROR_VARIABLE = "SE_KERAS_WEIGHTS_URL"


class DownloadError(OSError):
    """A weights file could not be fetched or failed its check."""


def cache_dir():
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    path = os.path.join(home, "models", "se_keras")
    os.makedirs(path, exist_ok=True)
    return path


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
    """Stream `url` into `path`. The "Downloading" line comes once the server has answered,
    so an unreachable origin prints nothing but the final error."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(path, "wb") as file:
            size = response.headers.get("Content-Length")
            size = f" ({int(size) / 1e6:.1f} MB)" if size and size.isdigit() else ""
            print(f"Downloading {os.path.basename(path)}{size} from {url}", flush=True)
            shutil.copyfileobj(response, file, 1 << 20)
    except urllib.error.HTTPError as error:
        raise _Unreachable(f"{url}: HTTP {error.code} {error.reason}.") from None
    except http.client.HTTPException as error:  # the connection ended before the file did
        raise _Unreachable(f"{url}: incomplete download ({error!r}).") from None
    except (urllib.error.URLError, OSError, ValueError) as error:  # network, bad URL
        raise _Unreachable(f"{url}: {getattr(error, 'reason', error)}.") from None


def _verify(path, info, url):
    digest = sha256_of(path)
    if not digest.startswith(info.sha256):
        raise DownloadError(
            f"The file downloaded from {url} has sha256 {digest}, expected "
            f"{info.sha256}{'...' if len(info.sha256) < 64 else ''}: the download is corrupt "
            "or truncated, or the server holds another file. Nothing was cached."
        )
    return digest


def record_digest(path, digest=None):
    """Record `path`'s sha256 (computed when not given) beside it; returns the digest."""
    digest = digest or sha256_of(path)
    stat = os.stat(path)
    record = {"sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    with atomic_path(path + ".sha256") as partial, open(partial, "w") as file:
        json.dump(record, file)
    return digest


def recorded_digest(path):
    """The sha256 recorded for `path`, or None when there is none or the file changed since."""
    try:
        with open(path + ".sha256") as file:
            record = json.load(file)
        stat = os.stat(path)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    unchanged = (record.get("size"), record.get("mtime_ns")) == (stat.st_size, stat.st_mtime_ns)
    digest = record.get("sha256")
    return digest if unchanged and isinstance(digest, str) else None


def remove_cached(path):
    """Remove a cached file and its digest record."""
    for name in (path, path + ".sha256"):
        if os.path.lexists(name):
            os.remove(name)


def _cached_and_valid(destination, info):
    """Whether the cached file is the registered one (hashed only if it changed)."""
    if not os.path.isfile(destination):
        return False
    digest = recorded_digest(destination) or record_digest(destination)
    return digest.startswith(info.sha256)


def fetch(info):
    """Path of `info`'s file in the cache, downloaded and verified if not there yet.

    A cached file that is not the registered one (truncated, swapped, or another
    registration's file of the same name) is removed and downloaded again."""
    destination = os.path.join(cache_dir(), info.file_name)
    if _cached_and_valid(destination, info):
        return destination
    remove_cached(destination)
    failures = []
    for url in origins(info):
        try:
            with atomic_path(destination) as partial:
                _download(url, partial)
                digest = _verify(partial, info, url)
            record_digest(destination, digest)
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
