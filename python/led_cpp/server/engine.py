"""The engine thread: one thread owns the model and runs the open decode loop (continuous
batching across requests); asyncio handlers submit jobs and read their events from it."""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import _core
from ..model import Model
from ..results import GenerationResult


class QueueFull(Exception):
    """More sequences are queued than the server takes; the client should retry later."""


class EngineClosed(Exception):
    """The server is shutting down."""


@dataclass
class GenerationJob:
    """One request's samples: prompts (token ids), n samples each, the native config."""

    prompts: list[list[int]]
    n: int
    config: _core.SamplingSpec
    max_tokens: int
    seed: int
    stop: list[str]
    top_logprobs: int = 0
    cache_prompt: bool = True  # start from the KV of the prefix shared with the previous prompt
    # Filled by the bridge: ("piece", prompt, sample, text, in_reasoning), ("done", prompt, sample, result),
    # ("error", exception) in the order they happened.
    events: asyncio.Queue[tuple[Any, ...]] = field(default_factory=asyncio.Queue)
    loop: asyncio.AbstractEventLoop | None = None
    request_id: int | None = None
    remaining: int = 0

    @property
    def size(self) -> int:
        return len(self.prompts) * self.n


class EngineBridge:
    """Owns the native open BatchRun on its own thread. Thread-safe submit/cancel/call."""

    def __init__(self, model: Model, *, n_parallel: int, max_queued: int) -> None:
        self.model = model
        self.n_parallel = n_parallel
        self.max_queued = max_queued
        self._native = _core.BatchRun(model._native, n_parallel)
        self._commands: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._outstanding = 0  # sequences submitted and not finished
        self._jobs: dict[int, GenerationJob] = {}
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="led-cpp-engine", daemon=True)
        self._thread.start()

    # --- from the event loop -----------------------------------------------------------------
    def submit(self, job: GenerationJob) -> GenerationJob:
        with self._lock:
            if self._closing:
                raise EngineClosed("the server is shutting down")
            if self._outstanding + job.size > self.n_parallel + self.max_queued and self._outstanding > 0:
                raise QueueFull(f"{self._outstanding} sequences are queued or decoding; retry shortly")
            self._outstanding += job.size
        job.loop = asyncio.get_running_loop()
        job.remaining = job.size
        self._send("submit", job)
        return job

    def cancel(self, job: GenerationJob) -> None:
        self._send("cancel", job)

    async def call(self, function: Callable[[], Any]) -> Any:
        """Runs function on the engine thread between decode steps (prompt scoring)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._send("call", (function, loop, future))
        return await future

    def stats(self) -> dict:
        return {
            "active": self._native.active,
            "waiting": self._native.waiting,
            "peak_active": self._native.stats.peak_active,
            "prompt_tokens_evaluated": self._native.stats.prompt_tokens_evaluated,
            "prompt_tokens_reused": self._native.stats.prompt_tokens_reused,
            "outstanding": self._outstanding,
            "n_parallel": self.n_parallel,
        }

    def stop(self) -> None:
        """Cancels every job at the next step without waiting: their streams end (finish_reason
        "cancelled"), so a shutdown need not wait for them. Safe from a signal handler."""
        with self._lock:
            self._closing = True
        self._send("close", None)

    def close(self, timeout: float = 2.0) -> None:
        """Cancels every job and stops the thread."""
        self.stop()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._native.close()

    # --- the engine thread -------------------------------------------------------------------
    def _send(self, kind: str, payload: Any) -> None:
        self._commands.put((kind, payload))
        self._wake.set()

    @staticmethod
    def _post(job: GenerationJob, events: list[tuple[Any, ...]]) -> None:
        def deliver() -> None:
            for event in events:
                job.events.put_nowait(event)

        try:
            job.loop.call_soon_threadsafe(deliver)
        except RuntimeError:  # the event loop has closed
            pass

    def _finish_sequences(self, count: int) -> None:
        with self._lock:
            self._outstanding -= count

    def _handle(self, kind: str, payload: Any) -> bool:
        if kind == "submit":
            job: GenerationJob = payload
            try:
                options = _core.RunOptions(
                    max_tokens=job.max_tokens,
                    seed=job.seed,
                    stop=job.stop,
                    top_logprobs=job.top_logprobs,
                    cache_prompt=job.cache_prompt,
                )
                job.request_id = self._native.submit(job.prompts, job.n, job.config, options)
            except (ValueError, RuntimeError, TypeError) as error:
                self._finish_sequences(job.size)
                self._post(job, [("error", error)])
            else:
                self._jobs[job.request_id] = job
        elif kind == "cancel":
            job = payload
            if job.request_id is not None and job.request_id in self._jobs:
                self._native.cancel(job.request_id)
                self._deliver()
        elif kind == "call":
            function, loop, future = payload
            try:
                value, error = function(), None
            except BaseException as failure:  # handed to the awaiting handler
                value, error = None, failure

            def settle() -> None:
                if future.cancelled():
                    return
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(value)

            try:
                loop.call_soon_threadsafe(settle)
            except RuntimeError:
                pass
        elif kind == "close":
            for request_id in list(self._jobs):
                self._native.cancel(request_id)
            self._deliver()
            return False
        return True

    def _deliver(self, pieces: list[_core.Piece] = ()) -> None:
        """Posts the step's text pieces and finished samples to their jobs."""
        events: dict[int, list[tuple[Any, ...]]] = {}
        for piece in pieces:
            if piece.text:
                events.setdefault(piece.request, []).append(
                    ("piece", piece.prompt, piece.sample, piece.text, piece.reasoning)
                )
        jobs = dict(self._jobs)
        for finished in self._native.take_finished():
            job = jobs.get(finished.request)
            if job is None:
                continue
            events.setdefault(finished.request, []).append(("done", finished.prompt, finished.sample, finished.result))
            job.remaining -= 1
            self._finish_sequences(1)
            if job.remaining == 0:
                self._jobs.pop(finished.request, None)
        for request_id, items in events.items():
            job = jobs.get(request_id)
            if job is not None:
                self._post(job, items)

    def _run(self) -> None:
        running = True
        while running:
            while True:
                try:
                    kind, payload = self._commands.get_nowait()
                except queue.Empty:
                    break
                running = self._handle(kind, payload) and running
            if not running:
                break
            if self._native.idle:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            try:
                pieces = self._native.advance()
            except Exception as error:  # an engine failure fails every job, not the server
                for job in list(self._jobs.values()):
                    self._native.cancel(job.request_id)
                    self._post(job, [("error", RuntimeError(f"the engine failed: {error}"))])
                self._jobs.clear()
                continue
            self._deliver(pieces)


def result_of(native: _core.SampleResult) -> GenerationResult:
    return GenerationResult.from_native(native, False)
