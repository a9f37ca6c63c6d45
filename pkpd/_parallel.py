"""Running independent tasks (replicates, chunks of subjects) locally or on a Dask cluster (private).

One mechanism for every "many independent pieces" workload of pkpd: population simulations by chunks of subjects,
scenario grids, bootstrap / VPC / simulation-estimation replicates and sensitivity samples.

* ``fn(shared, payload) -> result`` must be a *pure* module-level function: the same arguments give the same result
  wherever and however often it runs. Randomness comes in the payload (a ``numpy.random.SeedSequence`` per replicate,
  from :func:`spawn_seeds`), never from the state of a worker, so a run is identical locally, on a process pool and
  on any cluster, and a task the scheduler re-runs (a worker died) gives the same answer.
* ``shared`` (the model, the data, the fit) goes to each worker once: a Dask ``client.scatter(...,
  broadcast=True)``, or the initializer of a local process pool; the tasks only carry their payloads.
* Results come back in payload order (gathered by key), whatever order they finish in.

Where the work runs (``client`` / ``workers``):

* ``client=None, workers=1``: serially in this process.
* ``client=None, workers=k > 1``: a ``concurrent.futures.ProcessPoolExecutor`` of k processes (``spawn`` context;
  numba reloads compiled models from the on-disk cache, ``$PKPD_CACHE_DIR`` being inherited).
* ``client=None, workers=None`` (default): the first task runs here; if a process pool on all cores would save more
  than it costs to start (about 3 s), the rest go to one, else they run here too.
* ``client=``: a ``distributed.Client``, a cluster object (``LocalCluster``, ``dask_jobqueue.SLURMCluster``...: a
  client is opened on it and closed after) or a scheduler address such as ``"tcp://10.0.0.5:8786"``. Dask is
  imported only then.

Ctrl-C cancels the outstanding tasks and re-raises ``KeyboardInterrupt`` with a message saying how many had
finished (no partial result is returned, as in :func:`pkpd.simulate_summary`).
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ._progress import ChunkProgress, check_progress
from .errors import PkpdError

# starting a pool costs about this much [s] (each spawned process imports numpy, scipy, numba and pkpd and loads the
# compiled model): a default local run moves to a pool only where the time it saves is larger
POOL_STARTUP_SECONDS = 3.0


def spawn_seeds(seed, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seeds of ``seed`` (``numpy.random.SeedSequence(seed).spawn(n)``).

    Replicate ``i`` draws from ``numpy.random.default_rng(children[i])``: its numbers depend only on ``seed`` and
    ``i``, never on how many replicates run, in which order, or where.

    Parameters
    ----------
    seed : int, None, SeedSequence or numpy Generator
        None draws fresh entropy from the operating system; a Generator gives one integer to seed the sequence
        (so a seeded Generator gives reproducible children).
    n : int

    Examples
    --------
    >>> import numpy as np
    >>> a = [np.random.default_rng(s).random() for s in spawn_seeds(7, 3)]
    >>> b = [np.random.default_rng(s).random() for s in spawn_seeds(7, 5)[:3]]
    >>> a == b
    True
    """
    if isinstance(seed, np.random.Generator):
        seq = np.random.SeedSequence(int(seed.integers(2**63)))
    elif isinstance(seed, np.random.SeedSequence):
        seq = np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    elif seed is None or (isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0):
        seq = np.random.SeedSequence(None if seed is None else int(seed))
    else:
        raise PkpdError(f"seed: must be a non-negative integer, None, a numpy SeedSequence or Generator; got "
                        f"{seed!r}")
    return seq.spawn(int(n))


def cpu_count() -> int:
    """Cores this process may use (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def check_workers(workers) -> int | None:
    """``workers`` as None (automatic) or a positive int; PkpdError otherwise."""
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        raise PkpdError(f"workers: must be None (all cores when it pays), or a positive number of local processes; "
                        f"got {workers!r}")
    return int(workers)


def check_client(client) -> None:
    """Raise PkpdError unless ``client`` is None, a Dask client, a cluster object or a scheduler address string."""
    if client is None or isinstance(client, str):
        if isinstance(client, str) and not client.strip():
            raise PkpdError("client: an empty scheduler address; give e.g. 'tcp://10.0.0.5:8786', a "
                            "distributed.Client or a cluster object")
        return
    if _is_client(client) or hasattr(client, "scheduler_address"):
        return
    raise PkpdError(f"client: expected a dask.distributed Client, a Dask cluster (LocalCluster, SLURMCluster...) or "
                    f"a scheduler address such as 'tcp://10.0.0.5:8786'; got {type(client).__name__}")


def _is_client(obj) -> bool:
    return all(hasattr(obj, a) for a in ("submit", "scatter", "gather", "cancel"))


# ------------------------------------------------------------------------------------------------ worker side
_WORKER_SHARED: dict[str, Any] = {}


def _limit_threads(n: int) -> None:
    """Threads of the compiled engines in this task (the parallelism comes from the workers)."""
    import sys

    from ._native import set_threads

    set_threads(n)
    if "numba" not in sys.modules:
        os.environ["NUMBA_NUM_THREADS"] = str(n)  # read when numba is first imported (a fresh worker process)
        return
    import numba

    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


def _pool_init(shared_blob: bytes, threads: int) -> None:
    import pickle

    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    os.environ["PKPD_NUM_THREADS"] = str(threads)
    _WORKER_SHARED["shared"] = pickle.loads(shared_blob)
    _WORKER_SHARED["threads"] = threads


def _pool_task(fn: Callable, payload) -> Any:
    _limit_threads(_WORKER_SHARED["threads"])
    return fn(_WORKER_SHARED["shared"], payload)


def _dask_task(fn: Callable, shared, payload, host_threads: dict) -> Any:
    # numba threads per task: the host's cores shared among the Dask worker threads on it (1 on a LocalCluster
    # with one thread per core; all the node's cores for one single-threaded worker per Slurm node)
    try:
        from distributed import get_worker

        host = get_worker().address.rsplit(":", 1)[0]
        _limit_threads(max(1, cpu_count() // max(1, host_threads.get(host, cpu_count()))))
    except (ImportError, ValueError):
        pass
    return fn(shared, payload)


# ------------------------------------------------------------------------------------------------ the driver
def iter_tasks(fn: Callable, payloads: Sequence, *, shared=None, client=None, workers: int | None = None,
               progress: bool | None = None, description: str = "tasks", unit: str = "task",
               weights: Sequence[int] | None = None) -> Iterator[tuple[int, Any]]:
    """Run ``fn(shared, payload)`` for every payload; yield ``(index, result)`` in payload order.

    Results are yielded as soon as all earlier ones are in (later ones that finish first wait in memory), so a
    caller can merge chunk results in order while the rest still run. See the module docstring for where the work
    runs. ``weights`` (one positive int per payload, e.g. subjects per chunk) drive the progress bar (``unit``).
    """
    check_progress(progress)
    check_client(client)
    workers = check_workers(workers)
    payloads = list(payloads)
    n = len(payloads)
    weights = [1] * n if weights is None else [int(w) for w in weights]
    if n == 0:
        return
    total = sum(weights)
    with ChunkProgress(total, progress=progress, desc=description, unit=unit) as bar:
        if client is not None:
            yield from _run_dask(fn, payloads, shared, client, bar, description, weights)
            return
        start = 0
        if workers is None or workers == 1:
            t0 = time.perf_counter()
            yield from _run_serial(fn, payloads[:1], shared, bar, description, weights, 0, n)
            start = 1
            elapsed = time.perf_counter() - t0
            k = min(cpu_count(), n - 1)
            if workers is None and k > 1 and (n - 1) * elapsed * (1 - 1 / k) > POOL_STARTUP_SECONDS:
                workers = k
            else:
                workers = 1
        if workers == 1 or n - start == 1:
            yield from _run_serial(fn, payloads[start:], shared, bar, description, weights, start, n)
        else:
            yield from _run_pool(fn, payloads, shared, workers, bar, description, weights, start)


def map_tasks(fn: Callable, payloads: Sequence, **kwargs) -> list:
    """:func:`iter_tasks` collected into a list, in payload order."""
    return [result for _, result in iter_tasks(fn, payloads, **kwargs)]


def _interrupted(description: str, done: int, n: int) -> KeyboardInterrupt:
    return KeyboardInterrupt(f"{description} interrupted: {done} of {n} task(s) had finished; the others were "
                             "cancelled and no result was returned. Run again (with fewer replicates or subjects "
                             "if needed).")


def _run_serial(fn, payloads, shared, bar, description, weights, offset, n_total):
    done = offset
    try:
        for i, payload in enumerate(payloads, start=offset):
            result = fn(shared, payload)
            done += 1
            bar.advance(weights[i])
            yield i, result
    except KeyboardInterrupt:
        raise _interrupted(description, done, n_total) from None


def _in_order(arrivals, first: int, bar, weights, finished: list[int]):
    """Yield ``(i, result)`` in index order from ``first`` on, as ``(i, result)`` pairs arrive in any order; each
    arrival moves the progress bar by its weight and is appended to ``finished`` (for an interruption's message)."""
    pending: dict[int, Any] = {}
    for i, result in arrivals:
        pending[i] = result
        finished.append(i)
        bar.advance(weights[i])
        while first in pending:
            yield first, pending.pop(first)
            first += 1


def _run_pool(fn, payloads, shared, workers, bar, description, weights, start):
    import multiprocessing
    import pickle
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    n = len(payloads)
    try:
        blob = pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as err:
        raise PkpdError(f"{description}: the shared data cannot be sent to worker processes ({err}); use workers=1"
                        ) from None
    threads = max(1, cpu_count() // workers)
    # spawn (not fork): numba's threading layer and fork do not mix; children inherit os.environ
    # (PKPD_CACHE_DIR, so compiled models load from the same on-disk cache)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_pool_init, initargs=(blob, threads))
    finished_tasks: list[int] = []

    def arrivals():
        futures = {pool.submit(_pool_task, fn, payloads[i]): i for i in range(start, n)}
        remaining = set(futures)
        while remaining:
            finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for fut in finished:
                yield futures[fut], fut.result()  # re-raises the task's exception

    try:
        yield from _in_order(arrivals(), start, bar, weights, finished_tasks)
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        raise _interrupted(description, start + len(finished_tasks), n) from None
    except BrokenProcessPool:
        pool.shutdown(wait=False, cancel_futures=True)
        done = start + len(finished_tasks)
        raise PkpdError(
            f"{description}: a worker process died ({done} of {n} task(s) had finished). If this runs from a script, "
            "its top-level code must be under `if __name__ == \"__main__\":` (worker processes are started with "
            "'spawn', which imports the script again); or pass workers=1 to run in this process") from None
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _open_client(client):
    """(client, owned): a Client for a Client, cluster object or address; owned clients are closed after."""
    try:
        from distributed import Client
    except ImportError:
        raise PkpdError("client=: dask.distributed is not installed; in the pkpd folder, pip install -e "
                        "'.[distributed]' (and dask-jobqueue for Slurm, PBS or SGE clusters)") from None
    if _is_client(client):
        return client, False
    try:
        return Client(client), True
    except OSError as err:
        raise PkpdError(f"client: cannot connect to the Dask scheduler at {client!r}: {err}") from None


def _host_threads(client) -> dict[str, int]:
    threads: dict[str, int] = {}
    try:
        for addr, info in client.scheduler_info()["workers"].items():
            host = addr.rsplit(":", 1)[0]
            threads[host] = threads.get(host, 0) + int(info.get("nthreads", 1))
    except (KeyError, TypeError, AttributeError):
        pass
    return threads


def _run_dask(fn, payloads, shared, client, bar, description, weights):
    from distributed import as_completed

    client, owned = _open_client(client)
    n = len(payloads)
    futures, shared_future = [], None
    finished_tasks: list[int] = []
    try:
        # once per worker, not once per task; a list so that scatter sends the object whole
        [shared_future] = client.scatter([shared], broadcast=True, hash=False)
        host_threads = _host_threads(client)
        token = uuid.uuid4().hex[:12]
        name = "".join(c if c.isalnum() else "-" for c in description)[:40]
        futures = [client.submit(_dask_task, fn, shared_future, p, host_threads, key=f"pkpd-{name}-{token}-{i}",
                                 pure=False) for i, p in enumerate(payloads)]
        index = {f.key: i for i, f in enumerate(futures)}

        def arrivals():
            # results travel as they finish; a task's exception is re-raised here (the finally cancels the others)
            for fut, result in as_completed(futures, with_results=True):
                i = index[fut.key]
                futures[i] = None  # the result is here: release it on the cluster
                yield i, result

        yield from _in_order(arrivals(), 0, bar, weights, finished_tasks)
    except KeyboardInterrupt:
        raise _interrupted(description, len(finished_tasks), n) from None
    finally:
        live = [f for f in futures if f is not None]
        if shared_future is not None:
            live.append(shared_future)
        try:
            if live:
                client.cancel(live)
        except Exception:  # the cluster may already be gone; nothing left to release then
            pass
        if owned:
            client.close()


def chunk_bounds(n: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n)`` in chunks of ``chunk_size``.

    >>> chunk_bounds(5, 2)
    [(0, 2), (2, 4), (4, 5)]
    """
    return [(k * chunk_size, min((k + 1) * chunk_size, n)) for k in range(math.ceil(n / chunk_size))]


def check_chunk_size(chunk_size, what: str = "chunk_size") -> int:
    """A positive int, or PkpdError."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer) or chunk_size < 1:
        raise PkpdError(f"{what}: must be a positive integer; got {chunk_size!r}")
    return int(chunk_size)
