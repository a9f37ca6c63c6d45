"""The on-disk cache cannot be poisoned or wedged (issue 14, docs/security.md).

Planted libraries, numba pickles, .pyc files and pint pickles never run: in a folder that others can write, the cache
is refused (a private temporary one is used, with one warning); in a safe folder, an entry that does not match its
checksum or manifest is discarded and rebuilt. Sentinels prove that nothing ran.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import pkpd
import pkpd.compile
from pkpd import _cache, _check_cache
from pkpd._native import compiler
from pkpd.errors import CacheWarning, ModelFileError
from pkpd.model import _validate

MODEL = """
[model]
name = "{name}"
time_unit = "h"
description = "one-state decay used to probe the cache"

[parameters.k]
value = 0.1
unit = "1/h"
bounds = [0.001, 10.0]

[states.A]
unit = "mg"
initial = "0"
ddt = "{ddt}"

[outputs.amount]
expression = "A"
unit = "ug"

[doses.iv]
target = "A"
unit = "mg"
"""

PROBE = """
import json, sys, warnings
import numpy as np
import pkpd
import pkpd.compile
warnings.simplefilter("always")
m = pkpd.load_model(sys.argv[1])
for other in sys.argv[3:]:  # loaded only: their unit check needs pint
    pkpd.load_model(other)
cm = pkpd.compile_model(m, sys.argv[2])
sim = pkpd.simulate(cm, pkpd.Regimen.single(pkpd.Dose(100, "mg")), np.array([0.0, 1.0]))
print(json.dumps({"value": float(sim.outputs["amount"][0, 1]), "source": str(cm.source_path)}))
"""


def _engines():
    return [e if e == "numba" or compiler() else pytest.param(e, marks=pytest.mark.skip("no C compiler"))
            for e in ("native", "numba")]


def write_model(tmp_path: Path, name: str = "cache_probe", ddt: str = "-k * A", file: str | None = None) -> Path:
    path = tmp_path / f"{file or name}.toml"
    path.write_text(MODEL.format(name=name, ddt=ddt))
    return path


def probe(model: Path, cache: Path, engine: str, *also_load: Path) -> tuple[dict, str]:
    """Simulate ``model`` with ``engine`` in a new process (and load ``also_load``); its result and stderr."""
    env = dict(os.environ, PKPD_CACHE_DIR=str(cache))
    done = subprocess.run([sys.executable, "-c", PROBE, str(model), engine, *map(str, also_load)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


EXPECTED = 100_000 * np.exp(-0.1)


class _Payload:
    def __init__(self, sentinel: Path):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


def malicious_pickle(sentinel: Path) -> bytes:
    return pickle.dumps(_Payload(sentinel))


def malicious_library(tmp_path: Path, sentinel: Path) -> bytes:
    src = tmp_path / "evil.c"
    src.write_text('#include <stdlib.h>\n__attribute__((constructor)) static void pwn(void) '
                   f'{{ system("touch {sentinel}"); }}\n')
    lib = tmp_path / "evil.so"
    subprocess.run([compiler(), "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    return lib.read_bytes()


def malicious_pyc(source: Path, sentinel: Path) -> bytes:
    """A .pyc that Python's import system would accept for ``source`` (same mtime and size)."""
    from importlib._bootstrap_external import _code_to_timestamp_pyc

    st = source.stat()
    code = compile(f"import os\nos.system('touch {sentinel}')\n", str(source), "exec")
    return bytes(_code_to_timestamp_pyc(code, int(st.st_mtime), st.st_size))


def plant(cache: Path, engine: str, sentinel: Path, tmp_path: Path, *, vouch: bool) -> list[Path]:
    """Replace every compiled artefact of the cache by a payload; ``vouch``: also make the checksums and manifests
    match the payloads (so that only the folder check can stop them)."""
    planted = []
    if engine == "native":
        evil = malicious_library(tmp_path, sentinel)
        for lib in cache.glob("pkpd_c_*.so"):
            lib.write_bytes(evil)
            planted.append(lib)
    else:
        evil = malicious_pickle(sentinel)
        for f in list(cache.glob("__pycache__/*.nbi")) + list(cache.glob("__pycache__/*.nbc")):
            f.write_bytes(evil)
            planted.append(f)
        for source in cache.glob("pkpd_gen_*.py"):
            pyc = cache / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
            pyc.write_bytes(malicious_pyc(source, sentinel))
            planted.append(pyc)
    for f in cache.glob("pint/*"):
        if f.is_file() and not f.name.endswith(".sha256"):
            f.write_bytes(malicious_pickle(sentinel))
            planted.append(f)
    assert planted
    if vouch:
        for f in planted:
            f.with_name(f.name + ".sha256").write_text(_cache._digest(f.read_bytes()))
        for manifest in cache.glob("*.numba.json"):
            files = {str(f): _cache._digest(f.read_bytes()) for f in cache.glob("__pycache__/*.nb[ic]")}
            _cache.write_json(manifest, {"files": files})
    return planted



@pytest.mark.parametrize("engine", _engines())
def test_planted_files_in_a_folder_others_can_write_never_run(tmp_path, sentinel, engine):
    cache = tmp_path / "cache"
    model = write_model(tmp_path)
    first, _ = probe(model, cache, engine)
    assert first["value"] == pytest.approx(EXPECTED, rel=1e-6)
    plant(cache, engine, sentinel, tmp_path, vouch=True)
    os.chmod(cache, 0o775)  # group-writable: anyone in the group could have planted these
    # the planted model again, and a new equation, so that pint (and its pickled definitions) is needed again
    again, stderr = probe(model, cache, engine, write_model(tmp_path, name="cache_probe2", ddt="-2 * k * A"))
    assert "CacheWarning" in stderr and "writable by its group" in stderr
    assert stderr.count("CacheWarning") == 1
    assert again["value"] == pytest.approx(EXPECTED, rel=1e-6)


@pytest.mark.parametrize("engine", _engines())
def test_planted_files_without_a_matching_checksum_are_discarded_and_rebuilt(tmp_path, sentinel, engine):
    cache = tmp_path / "cache"
    model = write_model(tmp_path)
    probe(model, cache, engine)
    planted = plant(cache, engine, sentinel, tmp_path, vouch=False)
    again, stderr = probe(model, cache, engine)
    assert "CacheWarning" not in stderr
    assert again["value"] == pytest.approx(EXPECTED, rel=1e-6)
    compiled = [p for p in planted if p.suffix in (".so", ".nbi", ".nbc") and p.exists()]
    assert all(b"touch" not in p.read_bytes() for p in compiled)  # rebuilt, not kept


@pytest.mark.skipif(compiler() is None, reason="no C compiler")
@pytest.mark.parametrize("damage", ["empty", "truncated", "flipped byte", "no checksum"])
def test_a_damaged_library_is_rebuilt_and_the_run_succeeds_in_the_same_process(tmp_path, fresh_cache, damage):
    model = pkpd.load_model(write_model(tmp_path))
    regimen = pkpd.Regimen.single(pkpd.Dose(100, "mg"))
    pkpd.simulate(pkpd.compile_model(model, "native"), regimen, [0.0, 1.0])
    (lib,) = fresh_cache.glob("pkpd_c_cache_probe_*.so")
    data = lib.read_bytes()
    if damage == "empty":
        lib.write_bytes(b"")
    elif damage == "truncated":
        lib.write_bytes(data[: len(data) // 2])
    elif damage == "flipped byte":
        lib.write_bytes(data[:1000] + bytes([data[1000] ^ 1]) + data[1001:])
    else:
        lib.with_name(lib.name + ".sha256").unlink()
    pkpd.compile._compile.cache_clear()
    sim = pkpd.simulate(pkpd.compile_model(model, "native"), regimen, [0.0, 1.0])
    assert sim.outputs["amount"][0, 1] == pytest.approx(EXPECTED, rel=1e-6)
    assert lib.read_bytes() == data  # rebuilt (same compiler, same source: the same library)


def test_an_edited_unit_check_entry_is_detected_and_redone(tmp_path, fresh_cache):
    path = write_model(tmp_path)
    model = pkpd.load_model(path)
    (entry,) = (fresh_cache / "checked").glob("*.json")
    record = json.loads(entry.read_text())
    assert 1000.0 in record["transcript"]  # mg -> ug in the output
    # a well-formed edit (the conversion factor) without the checksum: detected, the check is redone with pint
    record["transcript"] = [1.0 if x == 1000.0 else x for x in record["transcript"]]
    entry.write_text(json.dumps(record))
    _check_cache._MEMORY.clear()
    again = pkpd.load_model(path)
    assert again._checked == _validate(model)
    assert 1000.0 in json.loads(entry.read_text())["transcript"]  # stored again, correct
    # an entry whose checksum matches but whose answers do not fit the model's check: discarded, redone
    for bad in ([], [True] * 3, record["transcript"] + [True], ["eval"] + record["transcript"][1:]):
        _cache.write_json(entry, {"format": _check_cache._FORMAT, "key": entry.stem, "transcript": bad})
        _check_cache._MEMORY.clear()
        assert pkpd.load_model(path)._checked == _validate(model)
    # the equations come from the model file, never from the cache: an entry holds none
    assert "ddt" not in entry.read_text() and "A" not in json.loads(entry.read_text())["transcript"]


def test_a_cached_unit_check_gives_the_same_trees_without_pint(tmp_path):
    for name in pkpd.models():
        code = ("import json, sys, pkpd; from pkpd.model import _Checked; m = pkpd.load_model(sys.argv[1]); "
                "print(json.dumps({'pint': 'pint' in sys.modules, 'trees': repr(m._checked)}))")
        env = dict(os.environ, PKPD_CACHE_DIR=str(tmp_path / "c"))
        runs = [json.loads(subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, env=env,
                                          check=True).stdout) for _ in range(2)]
        assert runs[0]["pint"] and not runs[1]["pint"]
        assert runs[0]["trees"] == runs[1]["trees"] == repr(_validate(pkpd.load_model(name)))


def test_with_parameters_and_fits_reuse_one_unit_check_entry(tmp_path, fresh_cache):
    model = pkpd.load_model(write_model(tmp_path))
    for i in range(300):
        model = model.with_parameters(k=0.01 + i * 1e-4)
    _check_cache._MEMORY.clear()
    model.with_parameters(k=0.5)
    assert len(list((fresh_cache / "checked").glob("*.json"))) == 1


@pytest.mark.parametrize("kind", ["file", "unwritable"])
def test_a_cache_that_cannot_be_used_falls_back_with_one_warning(tmp_path, monkeypatch, kind):
    if kind == "file":
        path = tmp_path / "a_file"
        path.write_text("not a folder")
        cache = path / "pkpd"
    else:
        if os.geteuid() == 0:
            pytest.skip("root can write anywhere")
        cache = tmp_path / "ro"
        cache.mkdir(mode=0o500)
    monkeypatch.setenv("PKPD_CACHE_DIR", str(cache))
    _cache._resolve.cache_clear()
    pkpd.compile._compile.cache_clear()
    _check_cache._MEMORY.clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = pkpd.load_model(write_model(tmp_path))
            for _ in range(2):
                sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(100, "mg")), [0.0, 1.0])
        assert sim.outputs["amount"][0, 1] == pytest.approx(EXPECTED, rel=1e-6)
        mine = [w for w in caught if issubclass(w.category, CacheWarning)]
        assert len(mine) == 1 and "private temporary folder" in str(mine[0].message)
    finally:
        _cache._resolve.cache_clear()
        pkpd.compile._compile.cache_clear()


def test_trusted_folder_rules(tmp_path):
    ok = tmp_path / "ok"
    ok.mkdir(mode=0o700)
    assert _cache.trusted_dir_problem(ok) is None
    for mode, why in ((0o770, "writable by its group"), (0o707, "writable by group and others")):
        os.chmod(ok, mode)
        assert why in _cache.trusted_dir_problem(ok)
    f = tmp_path / "f"
    f.write_text("")
    assert "not a directory" in _cache.trusted_dir_problem(f)
    open_parent = tmp_path / "open"
    open_parent.mkdir()
    os.chmod(open_parent, 0o777)  # writable by anyone, no sticky bit: the cache below could be swapped
    assert "writable by others" in _cache._untrusted(open_parent / "cache")
    os.chmod(open_parent, 0o1777)  # like /tmp: fine
    assert _cache._untrusted(open_parent / "cache2") is None


def test_long_model_names(tmp_path, fresh_cache):
    model = pkpd.load_model(write_model(tmp_path, name="m" + "x" * 127, file="long"))
    sim = pkpd.simulate(pkpd.compile_model(model, "native" if compiler() else "numba"),
                        pkpd.Regimen.single(pkpd.Dose(100, "mg")), [0.0, 1.0])
    assert sim.outputs["amount"][0, 1] == pytest.approx(EXPECTED, rel=1e-6)
    assert all(len(p.name) < 120 for p in fresh_cache.rglob("*"))
    with pytest.raises(ModelFileError, match="longer than 128 characters"):
        pkpd.load_model(write_model(tmp_path, name="m" * 300, file="too_long"))


def test_eviction_of_old_entries_and_stray_temporary_files(tmp_path):
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    now = time.time()
    old, recent, big = root / "pkpd_c_old.so", root / "pkpd_c_recent.so", root / "pkpd_c_big.so"
    stray, fresh_tmp = root / ".abc.so.tmp", root / ".def.so.tmp"
    for p, age_s, size in ((old, 40 * 86400, 10), (recent, 3600, 10), (big, 7200, 100), (stray, 7200, 5),
                           (fresh_tmp, 60, 5)):
        p.write_bytes(b"x" * size)
        p.with_name(p.name + ".sha256").write_text("0")
        os.utime(p, (now - age_s, now - age_s))
    removed = set(_cache.evict(root, now=now, max_bytes=100))
    assert {old, stray, big} <= removed  # too old, a leftover of an interrupted compile, over the size bound
    assert recent.exists() and fresh_tmp.exists()
    assert not old.with_name(old.name + ".sha256").exists()  # an entry goes with its checksum
    # housekeeping runs at most once a day
    (root / "pkpd_c_old2.so").write_bytes(b"x")
    os.utime(root / "pkpd_c_old2.so", (now - 40 * 86400,) * 2)
    _cache._housekeeping(root, now=now)
    assert not (root / "pkpd_c_old2.so").exists()
    (root / "pkpd_c_old3.so").write_bytes(b"x")
    os.utime(root / "pkpd_c_old3.so", (now - 40 * 86400,) * 2)
    _cache._housekeeping(root, now=now + 3600)
    assert (root / "pkpd_c_old3.so").exists()


def test_numba_engine_never_reads_a_pyc_even_in_a_trusted_folder(tmp_path, sentinel):
    # The generated module is compiled from the source in memory: a .pyc next to it is never imported.
    cache = tmp_path / "cache"
    model = write_model(tmp_path)
    probe(model, cache, "numba")
    (source,) = cache.glob("pkpd_gen_*.py")
    pyc = cache / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
    pyc.write_bytes(malicious_pyc(source, sentinel))
    assert importlib.util.cache_from_source(str(source)) == str(pyc)  # where Python's import system would look
    again, _ = probe(model, cache, "numba")
    assert again["value"] == pytest.approx(EXPECTED, rel=1e-6)


def test_a_cache_folder_created_by_another_process_meanwhile_is_used(tmp_path, monkeypatch):
    # Two processes starting with a fresh PKPD_CACHE_DIR (two test workers, two cluster workers): both see it missing,
    # the first creates it and the second's mkdir met "File exists", which sent it to a private folder with a
    # CacheWarning (stop 40, seen as a pytest -n 2 run failing on a fresh cache). The folder the other process made
    # (mode 0700, ours) is used; a file of that name is still refused, naming the problem.
    cache = tmp_path / "cache"
    real_exists = Path.exists

    def created_meanwhile(self):
        if self == cache and not real_exists(self):
            self.mkdir(mode=0o700)   # the other process, between our check and our mkdir
            return False
        return real_exists(self)

    monkeypatch.setattr(Path, "exists", created_meanwhile)
    assert _cache._untrusted(cache) is None and cache.is_dir()
    monkeypatch.setattr(Path, "exists", real_exists)
    (tmp_path / "a_file").write_text("")
    assert _cache._untrusted(tmp_path / "a_file") == "it is not a directory"
