"""pkpd's on-disk cache: where it is, whether it can be trusted, and verified reads and writes (private).

The cache holds compiled models (native shared libraries, numba's machine code), the dimensional analysis of each
model and pint's parsed unit definitions. Loading a library or unpickling a file runs code, so the cache is treated
as ssh treats ``~/.ssh`` (StrictModes) and pip its cache:

* **Trusted folder.** The folder (``$PKPD_CACHE_DIR`` or ``~/.cache/pkpd``) must be a directory owned by the
  current user and not writable by group or others, and no folder above it may be writable by others without the
  sticky bit. Otherwise pkpd does not use it: it warns once (:class:`CacheWarning`) and works in a private temporary
  cache for the rest of the process (removed at exit). The same happens when the folder cannot be created or
  written, or is a file. Folders pkpd creates are mode 0700.
* **Verified entries.** Every entry pkpd writes carries a SHA-256 checksum, written atomically with it (the entry
  and its checksum reach their final names by ``os.replace``). An entry is checked before it is used: a damaged
  entry (empty, truncated, edited) is removed and rebuilt, never loaded. Native libraries are loaded from the very
  bytes that were verified (a sealed in-memory copy on Linux), so the file cannot change between check and load.
* **Housekeeping.** At most once a day (per cache folder), entries not used for :data:`MAX_AGE_DAYS` days are
  removed, then the least recently used ones until the folder holds at most :data:`MAX_BYTES`; temporary files left
  by interrupted compiles are removed after an hour.

Examples
--------
>>> root = cache_root()
>>> root.is_dir() and (root.stat().st_mode & 0o022) == 0
True
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
import warnings
from pathlib import Path

from .errors import CacheWarning

#: Entries not used for this many days are removed.
MAX_AGE_DAYS = 30
#: The cache is trimmed (least recently used first) to this many bytes.
MAX_BYTES = 1 << 30
#: Temporary files older than this [s] are leftovers of an interrupted write or compile.
STALE_TMP_SECONDS = 3600
_CLEANUP_EVERY_SECONDS = 86400
_STAMP = ".last-cleanup"
_TMP_MARKERS = (".tmp",)  # ours: *.tmp, *.so.tmp, *.c.tmp; numba's: *.nbi.tmp.<uid>, *.nbc.tmp.<uid>


# ------------------------------------------------------------------------------------------------ the folder
def cache_root() -> Path:
    """The verified cache folder (``$PKPD_CACHE_DIR`` or ``~/.cache/pkpd``), or the process's private fallback."""
    configured = os.environ.get("PKPD_CACHE_DIR") or str(Path.home() / ".cache" / "pkpd")
    return _resolve(configured)


@functools.lru_cache(maxsize=16)
def _resolve(configured: str) -> Path:
    path = Path(configured).expanduser()
    problem = _untrusted(path)
    if problem is None:
        _housekeeping(path)
        return path
    fallback = _private_fallback()
    warnings.warn(f"pkpd: not using the cache folder {str(path)!r}: {problem}. Compiled models are cached in a "
                  f"private temporary folder for this process instead ({fallback}); fix the folder (e.g. "
                  f"chmod 700 it, or set PKPD_CACHE_DIR to a folder of your own) to reuse compiled models across "
                  "processes.", CacheWarning, stacklevel=3)
    return fallback


def _untrusted(path: Path) -> str | None:
    """Why ``path`` cannot serve as the cache (created, mode 0700, when missing), or None when it can."""
    try:
        # exist_ok: another process (a parallel test worker, a cluster worker) may create it between the two steps;
        # a file of that name still raises, and the folder it made is checked below like any other
        if not path.exists():
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        return f"it cannot be created ({err.strerror or err})"
    problem = trusted_dir_problem(path)
    if problem:
        return problem
    for parent in path.resolve().parents:
        try:
            st = parent.stat()
        except OSError:
            continue
        if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
            return f"the folder above it, {str(parent)!r}, is writable by others (anyone could replace the cache)"
    if not os.access(path, os.W_OK | os.X_OK):
        return "it is not writable"
    return None


def trusted_dir_problem(path: Path) -> str | None:
    """Why the folder ``path`` is not safe to load code from (None when it is): not a directory, owned by another
    user, or writable by group or others."""
    try:
        st = path.lstat()
    except OSError as err:
        return f"it cannot be read ({err.strerror or err})"
    if stat.S_ISLNK(st.st_mode):
        try:
            st = path.stat()
        except OSError as err:
            return f"it is a broken link ({err.strerror or err})"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a directory"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"it is owned by another user (uid {st.st_uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"it is writable by {'group and others' if st.st_mode & stat.S_IWOTH else 'its group'} (mode " \
               f"{stat.S_IMODE(st.st_mode):o})"
    return None


@functools.lru_cache(maxsize=1)
def _private_fallback() -> Path:
    path = Path(tempfile.mkdtemp(prefix="pkpd-cache-"))  # mode 0700, ours
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def subdir(name: str) -> Path:
    """A verified sub-folder of the cache (created mode 0700); the private fallback's when it is not safe."""
    root = cache_root()
    path = root / name
    try:
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        pass
    if trusted_dir_problem(path) is None:
        return path
    if root == _private_fallback():  # pragma: no cover - our own mkdtemp folder is always safe
        raise OSError(f"pkpd's private cache folder {path} is not safe")
    warnings.warn(f"pkpd: not using the cache folder {str(path)!r}: {trusted_dir_problem(path)}; using a private "
                  "temporary folder for this process instead.", CacheWarning, stacklevel=2)
    fallback = _private_fallback() / name
    fallback.mkdir(mode=0o700, exist_ok=True)
    return fallback


def file_stem(prefix: str, name: str, digest: str) -> str:
    """A cache file name: ``prefix``, a short readable part of ``name`` (ASCII letters, digits, ``_``; at most 40
    characters) and the content ``digest``. Never longer than ~90 characters, whatever the model's name."""
    readable = "".join(c for c in name if c.isascii() and (c.isalnum() or c == "_"))[:40] or "model"
    return f"{prefix}_{readable}_{digest}"


# ------------------------------------------------------------------------------------------------ entries
def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file in the same folder, then ``os.replace``)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def install(tmp: Path, path: Path) -> bytes:
    """Move a finished file ``tmp`` (e.g. a freshly linked library) to ``path`` with its checksum; returns its
    bytes. The checksum is written first, so a reader sees either no file, or a file and its checksum."""
    data = tmp.read_bytes()
    atomic_write(_sidecar(path), _digest(data).encode())
    os.replace(tmp, path)
    return data


def write_entry(path: Path, data: bytes) -> None:
    """Store ``data`` at ``path`` with its checksum (both atomically)."""
    atomic_write(_sidecar(path), _digest(data).encode())
    atomic_write(path, data)


def read_entry(path: Path) -> bytes | None:
    """The bytes of a verified entry, or None when it is missing or damaged (a damaged entry is removed)."""
    try:
        data = path.read_bytes()
        expected = _sidecar(path).read_text().strip()
    except FileNotFoundError:
        if path.exists():
            discard(path)  # an entry without its checksum is not trusted
        return None
    except OSError:
        return None
    if _digest(data) != expected:
        discard(path)
        return None
    _touch(path)
    return data


def discard(path: Path) -> None:
    """Remove an entry and its checksum."""
    for p in (path, _sidecar(path)):
        try:
            p.unlink()
        except OSError:
            pass


def _touch(path: Path) -> None:
    # the modification time is the "last used" time that housekeeping evicts by
    try:
        if time.time() - path.stat().st_mtime > 3600:
            os.utime(path)
    except OSError:
        pass


# --------------------------------------------------------------------------------------------- JSON entries
def write_json(path: Path, obj) -> None:
    """Store a JSON document as a verified entry (see :func:`write_entry`)."""
    write_entry(path, json.dumps(obj, separators=(",", ":")).encode())


def read_json(path: Path):
    """A verified JSON entry, or None (missing, damaged or not JSON: removed)."""
    data = read_entry(path)
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        discard(path)
        return None


# --------------------------------------------------------------------------------------------- housekeeping
def _housekeeping(root: Path, now: float | None = None) -> None:
    """Evict old entries and stray temporary files, at most once a day (a stamp file records the last run)."""
    now = time.time() if now is None else now
    stamp = root / _STAMP
    try:
        if now - stamp.stat().st_mtime < _CLEANUP_EVERY_SECONDS:
            return
    except OSError:
        pass
    try:
        stamp.touch()
        os.utime(stamp, (now, now))
        evict(root, now=now)
    except OSError:  # a cache that cannot be cleaned still works
        pass


def evict(root: Path, *, now: float | None = None, max_age_days: float = MAX_AGE_DAYS,
          max_bytes: int = MAX_BYTES) -> list[Path]:
    """Remove stray temporary files, entries unused for ``max_age_days`` and, least recently used first, entries
    beyond ``max_bytes`` in all. Returns what was removed."""
    now = time.time() if now is None else now
    removed, entries, sidecars = [], [], []
    for p in root.rglob("*"):
        try:
            st = p.lstat()
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or p.name == _STAMP:
            continue
        if p.name.endswith(".sha256"):  # goes with its entry
            sidecars.append(p)
            continue
        if any(m in p.name for m in _TMP_MARKERS):
            if now - st.st_mtime > STALE_TMP_SECONDS:
                p.unlink(missing_ok=True)
                removed.append(p)
            continue
        entries.append((st.st_mtime, st.st_size, p))
    entries.sort()
    total = sum(size for _, size, _ in entries)
    for mtime, size, p in entries:
        if now - mtime > max_age_days * 86400 or total > max_bytes:
            discard(p)
            removed.append(p)
            total -= size
    for p in sidecars:  # a checksum whose entry is gone
        entry = p.with_name(p.name[: -len(".sha256")])
        try:
            orphan = not entry.exists() and now - p.lstat().st_mtime > STALE_TMP_SECONDS
        except OSError:  # removed with its entry above
            continue
        if orphan:
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
