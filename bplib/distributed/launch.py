"""Starting a process group on one machine: a pool of worker processes that run collective tasks.

``torch.distributed`` runs one process per worker, each with a *rank* :math:`r \\in \\{0, \\dots, k-1\\}`
in a group of :math:`k` (the *world size*); the processes meet at a rendezvous (a key--value store on a
TCP port) and then talk through a *backend*: gloo on the CPU, NCCL between GPUs.  ``torchrun`` starts
such processes from the command line; :class:`WorkerPool` starts them from Python (a notebook, a test)
with :mod:`torch.multiprocessing`, once, and hands them one collective task after another, so that the
seconds each process spends importing torch are paid once.

The rendezvous store lives in the parent and listens on a port the operating system picks
(``TCPStore`` bound to port 0 on 127.0.0.1): no port number is guessed, so two pools on one machine
cannot collide.  A task is a function that every rank calls with the same arguments; it finds its
own rank with ``torch.distributed.get_rank()``.  Processes are forked from a fork server where one is
available (gloo on Linux and macOS) and spawned otherwise (:func:`default_start_method`); either way a
task must be importable (a function of a module, not one defined in a notebook, which a worker could
not find), and its arguments and results travel by pickling.  Each worker uses one thread (``OMP_NUM_THREADS=1``), and
its standard output and error are discarded unless ``quiet=False``: results come back through a
queue, in rank order, and the parent prints them, so nothing interleaves.  A worker's exception comes
back as a ``RuntimeError`` in the parent, with the worker's traceback.

Not done here: several machines (that is what ``torchrun --nnodes`` is for, see
``scripts/data_parallel.py``), restarting failed workers, elasticity.
"""

from __future__ import annotations

import datetime
import os
import queue
import traceback
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .._checks import argument, check_integer

HOST = "127.0.0.1"


def backend_for(world_size: int) -> str:
    """The backend a group of ``world_size`` processes uses: ``"nccl"`` when every rank can have a GPU of its own, else ``"gloo"``."""
    check_integer("backend_for", argument("world_size"), world_size, 1)
    if torch.cuda.is_available() and dist.is_nccl_available() and torch.cuda.device_count() >= world_size:
        return "nccl"
    return "gloo"


def default_start_method(backend: str) -> str:
    """``"forkserver"`` for gloo where it is available (Linux, macOS), else ``"spawn"``.

    A process forked straight from a multithreaded parent (a Jupyter kernel, a test runner, any
    process with PyTorch's or a library's threads) copies the locks those threads held at that moment,
    and can wait forever on one that nobody will release.  A *fork server* is a single-threaded process
    started once, which imports the workers' modules once (:data:`FORK_SERVER_PRELOAD`); each worker is
    forked from it, safely and in a fraction of a second.  A spawned worker starts a fresh interpreter
    and imports torch again (seconds per process on a small machine).  NCCL workers are spawned, each
    a fresh process that starts CUDA on its own GPU.
    """
    if backend == "gloo" and "forkserver" in mp.get_all_start_methods():
        return "forkserver"
    return "spawn"


REPORT_MARGIN_S = 10.0
"""Seconds the parent of a :class:`WorkerPool` waits for a result beyond the workers' own ``timeout_s``."""


FORK_SERVER_PRELOAD = ("bplib.distributed", "bplib.distributed.ddp")
"""The modules the fork server imports when it starts (torch, bplib's tasks, and DDP's module with
``torch._dynamo``, which takes seconds to import), so that no worker imports them again."""


def worker_device() -> torch.device:
    """The device of this rank's tensors: under NCCL the GPU of its local rank (``LOCAL_RANK``, set by ``torchrun``; the rank itself in a :class:`WorkerPool`), else the CPU."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return torch.device("cpu")


def _worker(rank, world_size, backend, port, timeout_s, quiet, tasks, results) -> None:
    """Body of a worker process: join the group, then run tasks until told to stop."""
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    if quiet:  # the parent prints; a worker's chatter would interleave with it
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    try:
        if backend == "nccl":
            torch.cuda.set_device(rank)
        store = dist.TCPStore(HOST, port, world_size + 1, is_master=False, timeout=datetime.timedelta(seconds=timeout_s))
        dist.init_process_group(
            backend, store=store, rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=timeout_s)
        )
    except BaseException:  # noqa: BLE001 -- reported to the parent, which raises it
        results.put((rank, "error", traceback.format_exc()))
        return
    results.put((rank, "ready", None))
    try:
        while (task := tasks.get()) is not None:
            fn, args = task
            try:
                results.put((rank, "ok", fn(*args)))
            except BaseException:  # noqa: BLE001 -- reported to the parent, which raises it
                results.put((rank, "error", traceback.format_exc()))
    finally:
        dist.destroy_process_group()
    results.close()
    results.join_thread()  # everything sent has been handed to the pipe
    os._exit(0)  # skip the interpreter's teardown of torch, which takes seconds


class WorkerPool:
    """``world_size`` worker processes joined in one ``torch.distributed`` process group, reused for many tasks.

    Use it as a context manager, which stops the workers and closes the rendezvous port on the way
    out, also after an error::

        with WorkerPool(3) as pool:
            grads = pool.run(data_parallel_gradient, net, x, y)   # one result per rank

    Parameters
    ----------
    world_size:
        The number of processes :math:`k \\ge 1`.
    backend:
        ``"gloo"`` or ``"nccl"``; by default :func:`backend_for` chooses.
    timeout_s:
        Seconds a worker waits for the others in a collective before giving up with an error; the
        parent waits :data:`REPORT_MARGIN_S` longer for each result, so that such an error reaches it.
        A task that fails on some ranks only leaves the others waiting in a collective until then;
        close such a pool and start a new one.
    quiet:
        Discard the workers' standard output and error (results come back through :meth:`run`).
    start_method:
        How the processes start (a start method of ``multiprocessing``); by default
        :func:`default_start_method`.
    """

    def __init__(self, world_size: int, *, backend: str | None = None, timeout_s: float = 60.0, quiet: bool = True, start_method: str | None = None):
        fn = "WorkerPool"
        check_integer(fn, argument("world_size"), world_size, 1)
        backend = backend_for(world_size) if backend is None else backend
        if backend not in ("gloo", "nccl"):
            raise ValueError(f"{fn}: argument 'backend' must be 'gloo' or 'nccl', got {backend!r}")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            raise ValueError(f"{fn}: argument 'timeout_s' must be a positive number of seconds, got {timeout_s!r}")
        self.world_size, self.backend, self.timeout_s = world_size, backend, float(timeout_s)
        start_method = default_start_method(backend) if start_method is None else start_method
        if start_method not in mp.get_all_start_methods():
            raise ValueError(
                f"{fn}: argument 'start_method' must be one of {mp.get_all_start_methods()} on this platform, "
                f"got {start_method!r}"
            )
        self.start_method = start_method
        context = mp.get_context(start_method)
        if start_method == "forkserver":
            context.set_forkserver_preload(list(FORK_SERVER_PRELOAD))  # read when the server first starts
        # the rendezvous: port 0 lets the operating system choose a free port, held from now on
        self._store = dist.TCPStore(HOST, 0, world_size + 1, is_master=True, wait_for_workers=False)
        self._tasks = [context.SimpleQueue() for _ in range(world_size)]
        self._results = context.Queue()
        self._processes = [
            context.Process(
                target=_worker,
                args=(rank, world_size, backend, self._store.port, self.timeout_s, quiet, self._tasks[rank], self._results),
                daemon=True,
            )
            for rank in range(world_size)
        ]
        try:
            for process in self._processes:
                process.start()
            self._collect("WorkerPool (starting the workers)")
        except BaseException:
            self.close()
            raise

    @property
    def processes(self) -> tuple:
        """The worker processes (``multiprocessing.Process``), rank by rank; after :meth:`close` none is alive."""
        return tuple(self._processes)

    def _collect(self, what: str) -> list[Any]:
        """One message from every rank, in rank order; a ``RuntimeError`` with the tracebacks if ranks failed.

        Each distinct error is reported once, with the first rank that raised it: a rank that failed
        alone leaves the others timing out in a collective, and its own error must not hide behind theirs.
        """
        received: dict[int, Any] = {}
        errors: dict[int, str] = {}
        wait_s = self.timeout_s + REPORT_MARGIN_S
        while len(received) + len(errors) < self.world_size:
            try:
                rank, status, payload = self._results.get(timeout=wait_s)
            except queue.Empty:
                silent = sorted(set(range(self.world_size)) - received.keys() - errors.keys())
                dead = [r for r, p in enumerate(self._processes) if not p.is_alive()]
                raise RuntimeError(
                    f"{what}: no result from ranks {silent} within {wait_s:g} s (ranks no longer alive: {dead})"
                ) from None
            (errors if status == "error" else received)[rank] = payload
        if errors:
            first_rank = {}  # the last line of each distinct traceback (the exception) -> the first rank to raise it
            for rank in sorted(errors):
                first_rank.setdefault(errors[rank].strip().splitlines()[-1], rank)
            reports = [f"rank {rank} of {self.world_size} failed:\n{errors[rank]}" for rank in first_rank.values()]
            raise RuntimeError(f"{what}: " + "\n".join(reports))
        return [received[rank] for rank in range(self.world_size)]

    def run(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        """Call ``fn(*args)`` on every rank at once; return the results, ``results[r]`` from rank ``r``.

        ``fn`` must be importable by name (a module-level function), and ``args`` and the results
        picklable.  Tensors among them are shared with the workers, not copied: a task must not
        modify its arguments in place.
        """
        if not callable(fn):
            raise TypeError(f"WorkerPool.run: argument 'fn' must be callable, got {type(fn).__name__}")
        if self._store is None:
            raise ValueError("WorkerPool.run: the pool is closed; start a new WorkerPool")
        for tasks in self._tasks:
            tasks.put((fn, args))
        return self._collect(f"WorkerPool.run({getattr(fn, '__qualname__', fn)!s})")

    def close(self) -> None:
        """Stop the workers (asking first, then terminating), wait for them, and close the rendezvous port."""
        if self._store is None:
            return
        for process, tasks in zip(self._processes, self._tasks):
            if process.is_alive():
                tasks.put(None)
        for process in self._processes:
            if process.pid is not None:
                process.join(timeout=10)
                if process.is_alive():
                    process.terminate()
                    process.join()
        self._results.close()
        self._results.join_thread()
        self._store = None  # the store's server stops with its last reference

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
