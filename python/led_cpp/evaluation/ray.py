"""Evaluation on a Ray cluster: a pool of workers, one ``led_cpp.Model`` each.

``RayBackend`` is a :class:`led_cpp.evaluation.batches.ChunkRunner`: pass it to
``evaluate`` / ``compare`` in place of a model.  Each worker is a Ray actor that
loads the GGUF once (from a path every node can read, or with ``hf_repo`` from
the Hugging Face Hub into its node's cache) and runs whole batches (a problem's
n samples together) with :func:`led_cpp.evaluation.batches.run_chunk`, so its records
are those of a single-process run.  The driver keeps at most ``max_in_flight``
batches queued per worker, writes records as batches finish, and gives the
batch of a worker that died (its process killed, its node lost) to another
worker; Ray restarts the dead worker.  A batch that kills ``max_attempts``
workers stops the run.

Ray is an optional dependency (``pip install "led_cpp[ray]"``); this module
imports it only when a backend starts.
"""

from __future__ import annotations

import collections
import hashlib
import os
import socket
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _core
from ..model import Model
from .batches import EvalJob, run_chunk
from .checker import AnswerChecker
from .problems import Problem

RAY_HINT = 'install the ray extra: pip install "led_cpp[ray]"'
#: The local cluster's object store: records are small.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024


def import_ray():
    """The ray module, or ImportError saying which extra to install."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"Ray is not installed ({e}); {RAY_HINT}") from None
    return ray


def _fingerprint(path: Path) -> str:
    """Size and the hash of the first MiB: cheap, and enough to tell two copies apart."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
    return f"{path.stat().st_size}:{h.hexdigest()[:16]}"


class EvalWorker:
    """The body of one Ray actor: a model and an answer checker.  A failure to load
    is kept and reported by :meth:`info`, naming the node (the actor stays up so
    the driver can say why)."""

    def __init__(self, model: str, hf_repo: str | None, revision: str | None, model_kwargs: dict):
        self.node = socket.gethostname()
        self.ip = _node_ip()
        self.error: tuple[str, str] | None = None
        self.model = None
        self.checker: AnswerChecker | None = None
        self.fingerprint = ""
        try:
            if hf_repo:
                self.model = Model.from_pretrained(hf_repo, model, revision=revision, **model_kwargs)
            else:
                path = Path(model)
                if not path.is_file() or not os.access(path, os.R_OK):
                    raise FileNotFoundError(
                        f"the worker on node {self.node} ({self.ip}) cannot read the model "
                        f"{model}: put the GGUF on storage every node mounts at the same path, "
                        "or pull it into each node's Hugging Face cache (hf_repo / --hf-repo)"
                    )
                self.model = Model(path, **model_kwargs)
            self.fingerprint = _fingerprint(self.model.path)
        except Exception as e:  # noqa: BLE001 - reported to the driver with the node's name
            message = str(e)
            if self.node not in message:
                message = f"on node {self.node} ({self.ip}): {message}"
            self.error = (type(e).__name__, message)

    def info(self) -> dict:
        import ray

        info = {
            "node": self.node,
            "ip": self.ip,
            "pid": os.getpid(),
            "error": self.error,
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }
        if self.model is not None:
            devices = [d for d in _core.devices() if d["type"] != "cpu"] or _core.devices()
            info.update(
                model=self.model.path.name,
                model_path=str(self.model.path),
                fingerprint=self.fingerprint,
                architecture=self.model.architecture,
                chat_template=self.model.chat_template,
                threads=self.model.n_threads,
                device=", ".join(f"{d['name']} ({d['description']})" for d in devices),
            )
        return info

    def run_chunk(self, chunk: Sequence[Problem], job: EvalJob) -> tuple[list[dict], dict]:
        if self.model is None:
            raise RuntimeError(self.error[1] if self.error else "the worker has no model")
        if self.checker is None or self.checker.timeout != job.verify_timeout:
            self.checker = AnswerChecker(job.verify_timeout)
        t0 = time.perf_counter()
        records = run_chunk(self.model, chunk, job, self.checker)
        return records, {"node": self.node, "pid": os.getpid(), "seconds": time.perf_counter() - t0}


def _node_ip() -> str:
    try:
        import ray

        return ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001 - only for messages
        return "?"


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    rest = address.split("://", 1)[-1].rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host:
        return rest, default_port
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise ValueError(f"bad Ray address {address!r}: use HOST:PORT, ray://HOST:PORT or auto") from None


def probe_address(address: str, timeout: float) -> None:
    """Raise ConnectionError unless something accepts a TCP connection at ``address``
    within ``timeout`` seconds (Ray's own connect retries for minutes)."""
    host, port = _host_port(address, 10001 if address.startswith("ray://") else 6379)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        raise ConnectionError(
            f"no Ray cluster answers at {address} ({host}:{port}: {e.strerror or e}) within "
            f"{timeout:g} s: start one with `ray start --head` there, or give its address "
            "(--ray HOST:PORT, or --ray auto on a node of the cluster)"
        ) from None


@dataclass
class RayBackend:
    """A pool of Ray workers for ``evaluate``/``compare`` (use as a context manager).

    ``model``: a GGUF path every worker's node can read, or with ``hf_repo`` a file
    of that Hugging Face repository (downloaded into each node's Hub cache).
    ``address``: None starts a local cluster (or joins the one this process
    already started with ``ray.init``), ``"auto"`` joins the cluster of this node,
    ``"HOST:PORT"`` / ``"ray://HOST:PORT"`` a remote one.  ``workers``: how many
    models (default: as many as the cluster's CPUs and GPUs fit).
    ``gpus_per_worker``: GPUs each worker holds (Ray sets its
    CUDA_VISIBLE_DEVICES).  ``threads_per_worker``: llama.cpp threads, also the
    CPUs each worker reserves (default: the cluster's CPUs shared out, 1 with
    GPUs).  ``model_kwargs``: more ``led_cpp.Model`` arguments (n_ctx,
    n_gpu_layers, led_projection, ...).  ``stall_timeout``: raise TimeoutError
    when no batch finishes for that many seconds (a hung worker or node).
    """

    model: str | os.PathLike
    hf_repo: str | None = None
    revision: str | None = None
    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float = 0.0
    threads_per_worker: int | None = None
    model_kwargs: dict = field(default_factory=dict)
    max_in_flight: int = 2  # batches queued on a worker: one running, one ready
    max_attempts: int = 3  # workers a batch may kill before the run stops
    max_restarts: int = 3  # Ray restarts of a dead worker
    connect_timeout: float = 15.0
    start_timeout: float = 900.0  # workers scheduled and models loaded (downloads included)
    stall_timeout: float | None = None  # stop when no batch finishes for this long (None: wait)

    def __post_init__(self) -> None:
        if self.workers is not None and (isinstance(self.workers, bool) or self.workers < 1):
            raise ValueError(f"workers must be at least 1, not {self.workers!r}")
        if self.gpus_per_worker < 0:
            raise ValueError(f"gpus_per_worker must be >= 0, not {self.gpus_per_worker}")
        if self.threads_per_worker is not None and self.threads_per_worker < 1:
            raise ValueError(f"threads_per_worker must be at least 1, not {self.threads_per_worker}")
        if self.max_in_flight < 1 or self.max_attempts < 1:
            raise ValueError("max_in_flight and max_attempts must be at least 1")
        if self.hf_repo is None:
            # Resolved here: workers do not share the driver's working directory.
            self.model = os.path.abspath(os.fspath(self.model))
        self._ray = None
        self._owns_cluster = False  # a local cluster this backend started
        self._connected = False  # ray.init called here: shut down (disconnect) on close
        self._actors: list[Any] = []
        self._infos: list[dict] = []
        self._threads = 0
        self._last: dict = {}

    # --- what evaluate reads as from a model -------------------------------------------------
    @property
    def path(self) -> Path:
        return Path(os.fspath(self.model))

    @property
    def chat_template(self) -> str | None:
        self.start()
        return self._infos[0]["chat_template"]

    # --- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> RayBackend:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> RayBackend:
        """Join or start the cluster, start the workers and wait until every model is
        loaded; raises (and stops what it started) when that cannot happen."""
        if self._actors:
            return self
        ray = self._ray = import_ray()
        self._connect(ray)
        try:
            self._start_workers(ray)
        except BaseException:
            self.close()
            raise
        return self

    def _connect(self, ray) -> None:
        if ray.is_initialized():
            return
        address = self.address
        if address in (None, "", "local"):
            ray.init(include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES, log_to_driver=False)
            self._owns_cluster = self._connected = True
            return
        if address == "auto":
            env = os.environ.get("RAY_ADDRESS")
            if env and env != "auto":
                probe_address(env, self.connect_timeout)
        else:
            probe_address(address, self.connect_timeout)
        try:
            ray.init(address=address, log_to_driver=False)
            self._connected = True
        except ConnectionError as e:
            raise ConnectionError(
                f"cannot join the Ray cluster at {address!r}: {e}; start one "
                "with `ray start --head`, or give its address"
            ) from None

    def _start_workers(self, ray) -> None:
        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        workers = self.workers
        if workers is None:
            fit = [cpus // (self.threads_per_worker or 1)]
            if self.gpus_per_worker:
                fit.append(gpus // self.gpus_per_worker)
            workers = max(1, int(min(fit)))
        threads = self.threads_per_worker
        if threads is None:
            threads = 1 if self.gpus_per_worker else max(1, int(cpus // workers))
        self._threads = threads
        asks = (
            f"{workers} workers of {threads} CPUs and {self.gpus_per_worker:g} GPUs; the "
            f"cluster has {cpus:g} CPUs and {gpus:g} GPUs"
        )
        if workers * threads > cpus or workers * self.gpus_per_worker > gpus:
            if self._owns_cluster:  # a local cluster does not grow
                raise ValueError(
                    f"the local Ray cluster cannot place {asks} (use fewer --workers, "
                    "--threads-per-worker or --gpus-per-worker)"
                )
            warnings.warn(f"waiting up to {self.start_timeout:g} s for the cluster to place {asks}", stacklevel=3)
        kwargs = {**self.model_kwargs, "n_threads": threads}
        actor = ray.remote(EvalWorker).options(
            num_cpus=threads, num_gpus=self.gpus_per_worker, max_restarts=self.max_restarts, max_task_retries=0
        )
        self._actors = [
            actor.remote(os.fspath(self.model), self.hf_repo, self.revision, kwargs) for _ in range(workers)
        ]
        refs = [a.info.remote() for a in self._actors]
        ready, waiting = ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout)
        if waiting:
            raise TimeoutError(
                f"{len(waiting)} of {workers} Ray workers did not start (placed and model "
                f"loaded) within {self.start_timeout:g} s; asked for {asks} (use fewer "
                "--workers, --threads-per-worker or --gpus-per-worker)"
            )
        self._infos = ray.get(refs)
        for info in self._infos:
            if info["error"]:
                kind, message = info["error"]
                raise (FileNotFoundError if kind == "FileNotFoundError" else RuntimeError)(
                    f"a Ray worker could not load the model: {message}"
                )
        prints = {i["fingerprint"] for i in self._infos}
        if len(prints) > 1:
            raise RuntimeError(
                "the workers loaded different model files under one name: "
                + "; ".join(f"{i['node']}: {i['model_path']} ({i['fingerprint']})" for i in self._infos)
            )

    def close(self) -> None:
        """Stop the workers; stop the local cluster this backend started, or leave the
        cluster it joined."""
        ray, actors = self._ray, self._actors
        self._actors = []
        if ray is None:
            return
        for a in actors:
            try:
                ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        if self._connected and ray.is_initialized():
            ray.shutdown()
        self._owns_cluster = self._connected = False

    def worker_infos(self) -> list[dict]:
        """Each worker's node, pid, device and model (asked now: pids change on restarts)."""
        self.start()
        return self._ray.get([a.info.remote() for a in self._actors])

    # --- ChunkRunner -----------------------------------------------------------------------------
    def run_chunks(self, chunks: Sequence[Sequence[Problem]], job: EvalJob) -> Iterator[list[dict]]:
        self.start()
        ray = self._ray
        retriable = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError)
        # A queued batch: (problems, slots of the workers that died running it).
        queue = collections.deque((list(c), ()) for c in chunks)
        inflight: dict[Any, tuple[int, list[Problem], tuple[int, ...]]] = {}
        load = [0] * len(self._actors)
        failures = [0] * len(self._actors)
        stats = [{"batches": 0, "samples": 0, "generated_tokens": 0, "busy_seconds": 0.0} for _ in self._actors]
        retried = 0
        t0 = time.perf_counter()
        job_ref = ray.put(job)
        try:
            while queue or inflight:
                live = [i for i in range(len(self._actors)) if failures[i] <= self.max_restarts]
                if not live:
                    raise RuntimeError("every Ray worker died; see the Ray logs (/tmp/ray/session_latest/logs) for why")
                while queue:
                    chunk, failed_on = queue[0]
                    # Another worker than those it killed, where there is one.
                    slot = min([i for i in live if i not in failed_on] or live, key=lambda i: load[i])
                    if load[slot] >= self.max_in_flight:
                        break
                    queue.popleft()
                    ref = self._actors[slot].run_chunk.remote(chunk, job_ref)
                    inflight[ref] = (slot, chunk, failed_on)
                    load[slot] += 1
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=self.stall_timeout)
                if not ready:
                    raise TimeoutError(
                        f"no problem finished within {self.stall_timeout:g} s on "
                        f"{len(self._actors)} Ray workers ({len(inflight)} running or queued)"
                    )
                for ref in ready:
                    slot, chunk, failed_on = inflight.pop(ref)
                    load[slot] -= 1
                    try:
                        records, info = ray.get(ref)
                    except retriable as e:
                        failures[slot] += 1
                        retried += 1
                        failed_on = failed_on + (slot,)
                        if len(failed_on) >= self.max_attempts:
                            raise RuntimeError(
                                f"problem {chunk[0].id} was lost with {len(failed_on)} Ray workers "
                                f"that ran it; last error: {e}"
                            ) from None
                        queue.appendleft((chunk, failed_on))
                        continue
                    failures[slot] = 0
                    s = stats[slot]
                    s.update(node=info["node"], pid=info["pid"])
                    s["batches"] += 1
                    s["samples"] += len(records)
                    s["generated_tokens"] += sum(r["generated_tokens"] for r in records)
                    s["busy_seconds"] += info["seconds"]
                    yield records
        finally:
            for ref in inflight:
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 - best effort; close() kills the workers
                    pass
            wall = time.perf_counter() - t0
            for s in stats:
                s["tokens_per_second"] = s["generated_tokens"] / s["busy_seconds"] if s["busy_seconds"] else 0.0
            tokens = sum(s["generated_tokens"] for s in stats)
            self._last = {
                "wall_seconds": wall,
                "generated_tokens": tokens,
                "tokens_per_second": tokens / wall if wall else 0.0,
                "retried_batches": retried,
                "worker_stats": stats,
            }

    def shape(self) -> dict:
        self.start()
        nodes = sorted({i["node"] for i in self._infos})
        return {
            "runner": "ray",
            "workers": len(self._actors),
            "nodes": len(nodes),
            "gpus_per_worker": self.gpus_per_worker,
            "threads_per_worker": self._threads,
            "devices": sorted({i["device"] for i in self._infos}),
        }

    def report(self) -> dict:
        shape = self.shape()
        workers = []
        for i, info in enumerate(self._infos):
            s = self._last.get("worker_stats", [{}] * len(self._infos))[i]
            workers.append(
                {
                    "node": info["node"],
                    "ip": info["ip"],
                    "pid": info["pid"],
                    "device": info["device"],
                    "gpu_ids": info["gpu_ids"],
                    "model": info["model"],
                    "threads": info["threads"],
                    **s,
                }
            )
        return {
            **shape,
            "address": self.address or "local",
            **{k: v for k, v in self._last.items() if k != "worker_stats"},
            "worker_stats": workers,
        }
