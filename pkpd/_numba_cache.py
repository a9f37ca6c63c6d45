"""Verifying numba's on-disk machine code of a generated model module (private).

numba caches a function's machine code as pickles (an index ``*.nbi`` and data ``*.nbc`` files) and unpickles them
in the next process: a planted or damaged file would run code or crash. pkpd therefore keeps a manifest of the
checksums of the files numba wrote for each generated module (itself a verified cache entry,
:mod:`pkpd._cache`) and, before the module's functions are first called in a process, removes any file of theirs
that is not in the manifest or does not match it (numba then compiles again and the manifest is renewed). Files in
a folder that is not safe (another owner, writable by others) are never used: caching is switched off for those
functions.
"""

from __future__ import annotations

import glob
import hashlib
import warnings
from pathlib import Path

from ._cache import discard, read_json, trusted_dir_problem, write_json
from .errors import CacheWarning

# per generated module: (path, size, mtime) of its files when the manifest was last written or verified
_SEEN: dict[str, tuple] = {}


def _dispatchers(module, modname: str) -> list:
    out = []
    for value in vars(module).values():
        cache = getattr(value, "_cache", None)
        func = getattr(value, "py_func", None)
        if cache is not None and func is not None and getattr(func, "__module__", None) == modname:
            out.append(value)
    return out


def _files_of(dispatcher) -> list[Path]:
    cache_file = getattr(dispatcher._cache, "_cache_file", None)
    if cache_file is None:  # caching switched off (NullCache)
        return []
    index = Path(cache_file._index_path)
    base = index.name[: -len(".nbi")]
    found = [index] if index.is_file() else []
    return found + sorted(Path(p) for p in glob.glob(glob.escape(str(index.parent / base)) + ".*.nbc"))


def _manifest_path(modname: str, cache: Path) -> Path:
    return cache / f"{modname}.numba.json"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _signature(files: list[Path]) -> tuple:
    out = []
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        out.append((str(f), st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


def verify(module, modname: str, cache: Path) -> None:
    """Before first use in this process: drop every numba cache file of ``module`` that the manifest does not vouch
    for, and switch caching off for functions whose cache folder is not safe."""
    from numba.core.caching import NullCache

    manifest = read_json(_manifest_path(modname, cache))
    recorded = manifest.get("files") if isinstance(manifest, dict) else None
    recorded = recorded if isinstance(recorded, dict) else {}
    files: list[Path] = []
    for disp in _dispatchers(module, modname):
        folder = Path(disp._cache._cache_path)
        problem = trusted_dir_problem(folder) if folder.exists() else None
        if problem:
            warnings.warn(f"pkpd: numba's cache folder {str(folder)!r} is not safe ({problem}); the model is compiled "
                          "without its cache in this process", CacheWarning, stacklevel=3)
            disp._cache = NullCache()
            continue
        mine = _files_of(disp)
        try:
            good = all(recorded.get(str(f)) == _sha(f) for f in mine)
        except OSError:
            good = False
        if not good:
            for f in mine:
                discard(f)
            mine = []
        files += mine
    _SEEN[modname] = _signature(files)


def record(module, modname: str, cache: Path) -> None:
    """After a call: if numba wrote or rewrote cache files of ``module``, renew its manifest (cheap otherwise: a few
    ``stat`` calls)."""
    files = [f for d in _dispatchers(module, modname) for f in _files_of(d)]
    sig = _signature(files)
    if sig == _SEEN.get(modname):
        return
    try:
        write_json(_manifest_path(modname, cache), {"files": {str(f): _sha(f) for f in files}})
    except OSError:
        return
    _SEEN[modname] = sig


class Module:
    """A generated numba module whose cache files are recorded in the manifest after each batch."""

    def __init__(self, module, modname: str, cache: Path):
        self._module, self._modname, self._cache = module, modname, cache

    def solve_batch(self, *args):
        """The module's ``solve_batch`` (see :mod:`pkpd._integrator`)."""
        try:
            return self._module.solve_batch(*args)
        finally:
            record(self._module, self._modname, self._cache)

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("_module", "_modname", "_cache"):
            raise AttributeError(name)
        return getattr(self._module, name)
