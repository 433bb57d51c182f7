"""Weights files on the Hugging Face Hub (`hf://owner/name[/file]`), through `huggingface_hub`.

The file lives in huggingface_hub's own cache, shared with timm and transformers users (a
file they already have is not downloaded again; `HF_ENDPOINT`, `HF_HUB_OFFLINE` and
`HF_HOME` apply as for them). The Hub publishes no digest that se-keras could register in
advance, so the file is checked against the sha256 the Hub reports for it (the ETag of an
LFS file), or against a `sha256` the caller pinned. The digest verified first is recorded in
se-keras' cache (`hub/<owner>--<name>--<file>.sha256`); a later file with another digest is
refused, and a file that fails its check is removed from huggingface_hub's cache.
"""

import json
import os
import re

from se_keras.utils.files import atomic_path
from se_keras.utils.validation import first_line
from se_keras.weights import download

SCHEME = "hf://"
DEFAULT_FILE = "model.safetensors"  # what timm's Hub repositories hold
_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_hub(origin):
    return isinstance(origin, str) and origin.startswith(SCHEME)


def parse(origin):
    """(repo_id, filename) of `hf://owner/name` (its model.safetensors) or
    `hf://owner/name/path/to/file`."""
    parts = origin[len(SCHEME) :].split("/") if is_hub(origin) else []
    if len(parts) < 2 or not all(parts):
        raise ValueError(
            f"A Hugging Face Hub file is named hf://owner/name[/file]. Received: {origin!r}"
        )
    return "/".join(parts[:2]), "/".join(parts[2:]) or DEFAULT_FILE


def _library():
    try:
        import huggingface_hub
    except ImportError:
        raise ImportError(
            "Weights from the Hugging Face Hub need huggingface_hub: pip install 'se-keras[hub]'"
        ) from None
    return huggingface_hub


def _reported_digest(library, path, repo, filename, recorded):
    """The sha256 the Hub reported for the file. huggingface_hub names each cached blob after
    the ETag the Hub sent, for an LFS file its sha256; where the cache holds copies instead
    of links (no symlinks), the Hub is asked again, or offline the digest `recorded` when
    the file was first verified stands in."""
    blob = os.path.basename(os.path.realpath(path))
    if _SHA256.fullmatch(blob):
        return blob
    try:
        etag = library.get_hf_file_metadata(library.hf_hub_url(repo, filename)).etag or ""
    except Exception as error:  # offline, or the Hub unreachable
        if recorded:
            return recorded
        raise download.DownloadError(
            f"Could not ask the Hugging Face Hub for the digest of {repo}/{filename}: "
            f"{first_line(error)}"
        ) from None
    etag = etag.strip('"').removeprefix("W/").strip('"')
    if not _SHA256.fullmatch(etag):
        raise download.DownloadError(
            f"The Hugging Face Hub reports no sha256 for {repo}/{filename} (ETag {etag!r}: "
            "not a large-file-storage file); pin `sha256=` to load it."
        )
    return etag


def record_path(repo, filename):
    name = f"{repo}/{filename}".replace("/", "--")
    return os.path.join(download.cache_dir(), "hub", f"{name}.sha256")


def _read_record(path):
    try:
        with open(path) as file:
            record = json.load(file)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) and isinstance(record.get("sha256"), str) else {}


def _remove_from_hub_cache(path):
    for name in {os.path.realpath(path), path}:
        if os.path.lexists(name):
            os.remove(name)


def fetch(info):
    """(path, sha256) of the Hub file `info.origins[0]`, downloaded into huggingface_hub's
    cache if it is not there, and verified."""
    library = _library()
    repo, filename = parse(info.origins[0])
    try:
        path = library.hf_hub_download(repo, filename)
    except Exception as error:  # huggingface_hub's errors for offline, missing, HTTP
        raise download.DownloadError(
            f"Could not get {filename} of {repo} from the Hugging Face Hub for the "
            f"{info.tag!r} weights of {info.model}: {first_line(error)}"
        ) from None
    records = record_path(repo, filename)
    record = _read_record(records)
    reported = _reported_digest(library, path, repo, filename, record.get("sha256"))
    pinned = info.sha256
    if pinned and not reported.startswith(pinned):
        problem = f"the Hub reports sha256 {reported}, pinned {pinned}"
    elif record and record["sha256"] != reported:
        problem = (
            f"the Hub now reports sha256 {reported}, but {record['sha256']} was verified "
            f"when it was first downloaded (remove {records} to accept the new file)"
        )
    else:
        problem = None
    if problem:
        raise download.DownloadError(f"Refusing {repo}/{filename}: {problem}.")
    stat = os.stat(path)
    unchanged = (record.get("size"), record.get("mtime_ns")) == (stat.st_size, stat.st_mtime_ns)
    if not unchanged:  # hash only what was not verified in this state before
        actual = download.sha256_of(path)
        if actual != reported:
            _remove_from_hub_cache(path)
            raise download.DownloadError(
                f"{repo}/{filename} has sha256 {actual}, but the Hub reports {reported}: the "
                "download is corrupt or truncated. It was removed from the cache."
            )
        os.makedirs(os.path.dirname(records), exist_ok=True)
        entry = {"sha256": reported, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        with atomic_path(records) as partial, open(partial, "w") as file:
            json.dump(entry, file)
    return path, reported


def read_config(repo):
    """The repository's config.json as a dict (timm writes one beside each checkpoint), or
    None when it has none."""
    library = _library()
    from huggingface_hub.errors import EntryNotFoundError

    try:
        path = library.hf_hub_download(repo, "config.json")
    except EntryNotFoundError:
        return None
    except Exception as error:
        raise download.DownloadError(
            f"Could not get config.json of {repo} from the Hugging Face Hub: {first_line(error)}"
        ) from None
    try:
        with open(path) as file:
            config = json.load(file)
    except ValueError:
        return None
    return config if isinstance(config, dict) else None
