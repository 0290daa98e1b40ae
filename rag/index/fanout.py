"""`rag index --ray`: Ray actors embed the batches, loading the models once each; this process parses, plans, writes."""
from __future__ import annotations

import dataclasses
import logging
import os
import resource
import socket
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np

from ..errors import RagError
from ..models.registry import Recipe, from_recipe, recipe_of
from ..types import Embedder
from .build import Batch, NewVectors, Pending, Plan, Prepared
from .writer import Writer

# Batches queued per worker: one being embedded and one waiting, so a worker never idles while this process writes.
# The writer takes them in the order they were planned: the index is the one a single-process run builds.
IN_FLIGHT = 2
START_TIMEOUT = 600.0  # seconds for every worker to start and load its models (a busy cluster frees CPUs slowly)
RESTARTS = 2  # a worker process that dies (OOM, a lost node) is started again this often, its batch sent again


@dataclass(frozen=True)
class Job:
    """One batch's texts for a worker: the first embedder's (chunks then sentences: one call, as `Batch` makes it)
    and its new lexicon words, then the second embedder's ("title\\ntext")."""

    texts: tuple[str, ...]
    words: tuple[str, ...]
    seconds: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.texts or self.words or self.seconds)


@dataclass(frozen=True)
class Done:
    """A worker's vectors for a job (rows in the job's order; None for an empty list) and what the job cost it."""

    texts: np.ndarray | None
    words: np.ndarray | None
    seconds: np.ndarray | None
    cpu: float  # CPU-seconds of the worker's process (all its threads) during the job
    wall: float
    worker: str
    peak_rss_mb: float  # the worker process's so far


@dataclass(frozen=True)
class WorkerInfo:
    worker: str  # host:pid
    host: str
    names: tuple[str, ...]  # the embedders it built, first then second
    dims: tuple[int, ...]
    version: str  # rag-news's
    load_seconds: float  # building the embedders and their first call (models loaded)


@dataclass(frozen=True)
class WorkerStats:
    """What one worker did in a run: for sizing a cluster, CPU-seconds per chunk written."""

    worker: str
    jobs: int
    texts: int  # chunks and sentences embedded by the first embedder
    words: int
    seconds: int  # chunks embedded by the second embedder
    cpu: float
    busy: float  # wall seconds inside jobs
    load_seconds: float
    peak_rss_mb: float


@dataclass(frozen=True)
class RunStats:
    workers: tuple[WorkerStats, ...]
    refetched: int  # texts embedded at a batch's turn because the plan made when it was sent missed them (merges)
    start_seconds: float  # connecting to (or starting) Ray and starting the workers, models loaded


def _rag_version() -> str:
    try:
        return metadata.version("rag-news")
    except metadata.PackageNotFoundError:
        return "unknown"


def _cause(e: Exception) -> str:
    """The last line of a Ray error: the worker's own exception, without Ray's traceback around it."""
    lines = [x for x in str(e).strip().splitlines() if x.strip()]
    return lines[-1].strip() if lines else type(e).__name__


def _cpus() -> int:
    """The CPUs this process may run on (a container's or taskset's share, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _copy(rows: np.ndarray | None) -> np.ndarray | None:
    return None if rows is None else np.array(rows, dtype=np.float32)


def _build(spec: Recipe | Embedder) -> Embedder:
    return from_recipe(spec) if isinstance(spec, Recipe) else spec


class EmbedWorker:
    """A Ray actor's body: the embedders built once, from recipes (rag.models.registry.recipe_of) or as shipped (an
    embedder of the caller's own), models loaded at once; then one job at a time."""

    def __init__(self, first: Recipe | Embedder, second: Recipe | Embedder | None):
        t0 = time.perf_counter()
        self.first = _build(first)
        self.second = _build(second) if second is not None else None
        embedders = [e for e in (self.first, self.second) if e is not None]
        for e in embedders:
            e.embed_documents(["warm-up"])  # load the model now: the driver's describe() returns once it is in
        host = socket.gethostname()
        self.info = WorkerInfo(f"{host}:{os.getpid()}", host, tuple(e.name for e in embedders),
                               tuple(int(e.dim) for e in embedders), _rag_version(), time.perf_counter() - t0)

    def describe(self) -> WorkerInfo:
        return self.info

    def embed(self, job: Job) -> Done:
        t0, c0 = time.perf_counter(), time.process_time()
        texts = self.first.embed_documents(list(job.texts)) if job.texts else None
        words = self.first.embed_documents(list(job.words)) if job.words else None
        seconds = self.second.embed_documents(list(job.seconds)) if job.seconds else None
        return Done(texts, words, seconds, time.process_time() - c0, time.perf_counter() - t0, self.info.worker,
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


@dataclass(frozen=True)
class RayFanout:
    """`index_stream(..., fanout=RayFanout())`: Ray workers embed. `address` None starts a local Ray cluster of
    this machine's CPUs (or `workers` CPUs) for the run; "auto", "HOST:PORT" or "ray://HOST:PORT" joins a running
    one (`ray start --head`) and leaves it running. `workers`: actors of one CPU each (default: every CPU of the
    cluster). A Ray already initialised in this process is used as it is. Ray starts only once a batch needs
    embedding (a run with nothing new does not start it). `runs` gets each run's per-worker statistics."""

    address: str | None = None
    workers: int | None = None
    in_flight: int = IN_FLIGHT
    runs: list[RunStats] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self):
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"Ray workers must be >= 1, got {self.workers!r}")
        if self.in_flight < 1:
            raise ValueError(f"in_flight must be >= 1 batch per worker, got {self.in_flight!r}")

    def __call__(self, writer: Writer, embedder: Embedder, second: Embedder | None, counts: dict[str, int],
                 checkpoint: int = 0) -> "RayBatch":
        return RayBatch(self, writer, embedder, second, counts, checkpoint)


@dataclass(frozen=True)
class _Flight:
    prep: Prepared
    plan: Plan
    ref: Any  # the worker's ObjectRef, None for a batch with nothing to embed
    worker: int


class RayBatch(Batch):
    """A `Batch` whose embedding runs in Ray actors: each batch is planned here as `Batch` plans it, less what the
    batches still in flight will write (`Pending`), sent to the least busy worker, and written when its turn comes
    (batches are written in the order they were planned, so checkpoints fall where a single-process run puts them).
    At its turn a batch is planned again against the writer, exactly as a single-process run plans it then; the
    worker's vectors fill that plan (the same texts in the same calls); what it lacks, had a merge dropped a cached
    vector meanwhile, is embedded on a worker there and then."""

    def __init__(self, opts: RayFanout, writer: Writer, embedder: Embedder, second: Embedder | None,
                 counts: dict[str, int], checkpoint: int = 0):
        super().__init__(writer, embedder, second, counts, checkpoint)
        self.opts = opts
        self.specs = (recipe_of(embedder) or embedder, (recipe_of(second) or second) if second is not None else None)
        self.actors: list = []
        self.infos: list[WorkerInfo] = []
        self.queued: list[int] = []
        self.flight: deque[_Flight] = deque()
        self.refetched = 0  # (RunStats.refetched)
        self._held = (Counter(), Counter(), Counter(), Counter())  # hashes, sentence hashes, words, second keys
        self._stats: dict[str, list[float]] = {}
        self._own_ray = False
        self._start_seconds = 0.0

    # ---- the flow

    def submit(self, prep: Prepared) -> None:
        self._finish_ready()
        plan = self.plan(prep, Pending(*self._held))
        job = Job(tuple(plan.first_texts()), plan.words, tuple(plan.second_texts()))
        ref, worker = None, -1
        if job:
            self._start()
            while len(self.flight) >= self.opts.in_flight * len(self.actors):
                self._finish_head()
            worker = min(range(len(self.actors)), key=lambda i: (self.queued[i], i))
            ref = self.actors[worker].embed.remote(job)
            self.queued[worker] += 1
        self.flight.append(_Flight(prep, plan, ref, worker))
        self._hold(prep, 1)

    def flush(self) -> None:
        super().flush()
        while self.flight:
            self._finish_head()

    def _finish_ready(self) -> None:
        """Write the batches at the head of the line whose vectors are back, without waiting."""
        while self.flight:
            ref = self.flight[0].ref
            if ref is not None:
                import ray

                if not ray.wait([ref], timeout=0)[0]:
                    return
            self._finish_head()

    def _finish_head(self) -> None:
        f = self.flight.popleft()
        done = self._get(f.ref) if f.ref is not None else None
        if f.ref is not None:
            self.queued[f.worker] -= 1
        sent = NewVectors.of(f.plan, *((done.texts, done.words, done.seconds) if done else (None, None, None)))
        plan = self.plan(f.prep)  # what a single-process run finds at this point
        new = NewVectors({h: sent.chunks[h] for h, _ in plan.todo if h in sent.chunks},
                         {h: sent.sentences[h] for h, _ in plan.stodo if h in sent.sentences},
                         {w: sent.words[w] for w in plan.words if w in sent.words},
                         {k: sent.seconds[k] for k in plan.second_todo if k in sent.seconds})
        new = self._complete(plan, new)
        self.write(f.prep, plan, new)
        self._hold(f.prep, -1)

    def _complete(self, plan: Plan, new: NewVectors) -> NewVectors:
        """`new` with what `plan` asks for and it lacks, embedded by a worker now."""
        todo = tuple((h, t) for h, t in plan.todo if h not in new.chunks)
        stodo = tuple((h, t) for h, t in plan.stodo if h not in new.sentences)
        words = tuple(w for w in plan.words if w not in new.words)
        second_todo = tuple(k for k in plan.second_todo if k not in new.seconds)
        if not (todo or stodo or words or second_todo):
            return new
        rest = Plan({}, {}, {}, todo, stodo, words, second_todo)
        self._start()
        done = self._get(self.actors[0].embed.remote(Job(tuple(rest.first_texts()), words, tuple(rest.second_texts()))))
        more = NewVectors.of(rest, done.texts, done.words, done.seconds)
        self.refetched += len(todo) + len(stodo) + len(words) + len(second_todo)
        return NewVectors({**new.chunks, **more.chunks}, {**new.sentences, **more.sentences},
                          {**new.words, **more.words}, {**new.seconds, **more.seconds})

    def _hold(self, prep: Prepared, sign: int) -> None:
        """Count (1) or uncount (-1) a batch's keys among those in flight."""
        for held, keys in zip(self._held, (prep.hashes, prep.shashes, prep.words, prep.keys)):
            for k in set(keys):
                held[k] += sign
                if held[k] <= 0:
                    del held[k]

    def _get(self, ref) -> Done:
        import ray

        try:
            done = ray.get(ref)
        except ray.exceptions.RayActorError as e:
            raise RagError(f"a Ray worker died and could not be restarted ({_cause(e)}); the checkpoints "
                           "this run published are kept: run the same command again to go on") from e
        s = self._stats.setdefault(done.worker, [0, 0, 0, 0, 0.0, 0.0, 0.0])
        for i, x in enumerate((1, len(done.texts) if done.texts is not None else 0,
                               len(done.words) if done.words is not None else 0,
                               len(done.seconds) if done.seconds is not None else 0, done.cpu, done.wall)):
            s[i] += x
        s[6] = max(s[6], done.peak_rss_mb)
        # copies: rows kept in the caches would otherwise pin the job's whole buffer in Ray's object store
        return dataclasses.replace(done, texts=_copy(done.texts), words=_copy(done.words), seconds=_copy(done.seconds))

    # ---- Ray

    def _start(self) -> None:
        """Connect to (or start) Ray and start the workers, once; their models are loaded when this returns."""
        if self.actors:
            return
        t0 = time.perf_counter()
        try:
            import ray
        except ImportError:
            raise RagError("--ray needs Ray: pip install 'rag-news[ray]' (the same version on every node)") from None
        where = self.opts.address or "a local Ray cluster"
        if not ray.is_initialized():
            try:
                if self.opts.address is None:
                    # address "local": a new cluster even where RAY_ADDRESS names a running one
                    ray.init(address="local", num_cpus=self.opts.workers or _cpus(),
                             include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
                else:
                    ray.init(address=self.opts.address, logging_level=logging.WARNING, log_to_driver=False)
            except ConnectionError as e:
                raise RagError(f"cannot reach the Ray cluster at {where} ({_cause(e)}): start it with `ray start "
                               "--head` on its head node, or index without --ray ADDRESS to start a local one. A "
                               "cluster with token authentication (Ray >= 2.59) also needs RAY_AUTH_MODE=token and its "
                               "token here (~/.ray/auth_token or RAY_AUTH_TOKEN)") from None
            self._own_ray = True
        cpus = int(ray.cluster_resources().get("CPU", 0))
        n = self.opts.workers or cpus
        if n < 1 or cpus < n:
            raise RagError(f"{where} has {cpus} CPUs, fewer than the {n} workers asked for: pass "
                           f"--ray-workers {max(cpus, 1)}, or add nodes (`ray start --address HEAD:6379`)")
        try:
            ray.cloudpickle.dumps(self.specs)
        except Exception as e:
            raise RagError(f"embedder {self.emb.name} cannot be sent to Ray workers ({e}): use one they can build "
                           "by name (use, e5, st:PATH)") from None
        actor = ray.remote(EmbedWorker).options(num_cpus=1, max_restarts=RESTARTS, max_task_retries=RESTARTS)
        self.actors = [actor.remote(*self.specs) for _ in range(n)]
        self.queued = [0] * n
        refs = [a.describe.remote() for a in self.actors]
        ready, _ = ray.wait(refs, num_returns=n, timeout=START_TIMEOUT)
        if len(ready) < n:
            raise RagError(f"only {len(ready)} of {n} Ray workers started within {START_TIMEOUT:.0f} s: the "
                           f"cluster's CPUs are taken by other work (see `ray status`); pass --ray-workers "
                           f"{max(len(ready), 1)} or wait for them")
        try:
            self.infos = ray.get(refs)
        except ray.exceptions.RayActorError as e:
            raise RagError(f"a Ray worker could not load the embedders: {_cause(e)}") from None
        want = tuple(e.name for e in (self.emb, self.second) if e is not None)
        dims = tuple(int(e.dim) for e in (self.emb, self.second) if e is not None)
        for info in self.infos:
            if (info.names, info.dims) != (want, dims) or info.version != _rag_version():
                raise RagError(f"Ray worker {info.worker} built {', '.join(info.names)} ({info.dims}) with rag-news "
                               f"{info.version}; this process indexes with {', '.join(want)} ({dims}) and rag-news "
                               f"{_rag_version()}: install the same rag-news version on every node")
        self._start_seconds = time.perf_counter() - t0

    def stats(self) -> RunStats:
        loads = {i.worker: i.load_seconds for i in self.infos}
        return RunStats(tuple(WorkerStats(w, int(s[0]), int(s[1]), int(s[2]), int(s[3]), s[4], s[5], loads.get(w, 0.0),
                                          s[6]) for w, s in sorted(self._stats.items())),
                        self.refetched, self._start_seconds)

    def close(self) -> None:
        try:
            super().close()
            if self.actors:
                stats = self.stats()
                self.opts.runs.append(stats)
                cpu, chunks = sum(s.cpu for s in stats.workers), self.counts["chunks"]
                if chunks and cpu:
                    hosts = len({i.host for i in self.infos})
                    self.notes.append(
                        f"Ray: {len(self.actors)} workers on {hosts} host{'s' if hosts > 1 else ''} spent {cpu:.0f} "
                        f"CPU-s embedding: {cpu / chunks * 1000:.0f} ms per chunk written, about "
                        f"{chunks / cpu:.1f} chunks/s per busy worker")
        finally:
            self._stop()

    def _stop(self) -> None:
        if not self.actors and not self._own_ray:
            return
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors = []
        if self._own_ray:
            ray.shutdown()
            self._own_ray = False
