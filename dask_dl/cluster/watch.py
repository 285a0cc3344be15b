"""Waits that are never silent: every wait on the cluster polls the workers it depends on, raises
when one of them is lost or paused, and says in one line what a slow worker is doing.

A lost worker (killed, restarted by its nanny, retired) or a worker Dask paused for memory cannot
finish the work it was given; the caller re-plans without it (the loop re-runs the round on the
workers that are left). When every worker it depends on is paused, the wait fails with the memory
figures and what to do.
"""
from __future__ import annotations

import logging
import time

from ..errors import ClusterUnavailableError, exception_chain

logger = logging.getLogger("dask_dl")

# a wait reports after this many seconds (or 10x the expected time), then after twice as long, ...
FIRST_REPORT_S = 10.0
# how long a paused worker may hold up the work before the wait gives up on it
PAUSED_GRACE_S = 5.0
# how long paused workers may hold up a set-up step before the fit fails with the reason
SETUP_PAUSED_GIVE_UP_S = 30.0
# a set-up task executing this long is stalled: once tasks of its kind have finished in the step,
# max(SETUP_STALL_MIN_S, SETUP_STALL_FACTOR x the longest of them), else SETUP_STALL_ALONE_S (a
# step's first tasks have no reference: one may stream a large partition)
SETUP_STALL_MIN_S = 300.0
SETUP_STALL_FACTOR = 10.0
SETUP_STALL_ALONE_S = 1800.0
SETUP_LOOK_S = 1.0       # how often a set-up wait asks the scheduler what executes
HEARTBEAT_LAG_S = 5.0    # the scheduler learns what executes from worker heartbeats (up to seconds apart)


class WorkersUnavailable(RuntimeError):
    """Workers the waited-for work depends on were lost or paused for memory."""

    def __init__(self, lost: set, paused: dict):
        self.lost, self.paused = set(lost), dict(paused)
        self.workers = self.lost | set(self.paused)  # the workers to leave out, as TasksStalled's
        parts = [f"lost {sorted(self.lost)}"] if self.lost else []
        parts += [f"{a} paused for memory ({_memory_text(w)})" for a, w in self.paused.items()]
        advice = (": give the workers a larger memory_limit, or train with out_of_core=True or "
                  "replicate_training_data=False") if self.paused else ""
        super().__init__("workers unavailable: " + "; ".join(parts) + advice)


class TasksStalled(RuntimeError):
    """Tasks the wait watches have been processing on their workers far longer than expected: a
    worker that hangs (a stuck thread, a task its worker lost track of) would hold the fit forever."""

    def __init__(self, stalled: dict, seconds: float, limit_s: float, doing: str, state: str = "processing"):
        self.workers = set(stalled.values())
        super().__init__(f"stalled: {', '.join(sorted(stalled))} {state} on {', '.join(sorted(self.workers))} "
                         f"for {seconds:.0f} s (limit {limit_s:.0f} s; {doing}); a worker that stays stalled "
                         "may be hung: restart it (client.restart())")


def worker_states(client) -> dict:
    """{address: the scheduler's view of the worker (status, memory figures, ...)} of live workers.
    Asks the scheduler itself: ``client.scheduler_info()`` returns the client's cached identity,
    which its periodic refresh may overwrite with a copy that lists no workers at all."""
    if hasattr(client, "sync") and hasattr(client, "scheduler"):
        try:
            return dict(client.sync(client.scheduler.identity, n_workers=-1)["workers"])
        except TypeError:  # older distributed: identity() lists every worker
            return dict(client.sync(client.scheduler.identity)["workers"])
    return dict(client.scheduler_info()["workers"])


def running(states: dict) -> set:
    """The workers of ``states`` (``worker_states``) that run tasks: not paused, closing or starting."""
    return {a for a, s in states.items() if s.get("status") == "running"}


def wait_for(client, futures: list, *, workers, what: str, expected_s: float = 1.0, quiet: bool = False,
             paused_grace_s: float = PAUSED_GRACE_S, stalls: RoundStallWatch | SetupStallWatch | None = None) -> None:
    """Wait until every future is finished (done or erred). Raise WorkersUnavailable as soon as one
    of ``workers`` is gone, or has been paused for memory longer than ``paused_grace_s``; past
    max(FIRST_REPORT_S, 10 x ``expected_s``) log one line on what each slow worker is doing. With
    ``stalls``, raise TasksStalled once it finds a task stalled."""
    from distributed import wait
    workers = set(workers)
    poll = min(1.0, max(0.05, expected_s / 2))
    start = time.perf_counter()
    report_at = start + max(FIRST_REPORT_S, 10.0 * expected_s)
    paused_since: dict = {}
    while True:
        try:
            wait(futures, timeout=poll)
            return
        except TimeoutError as timeout:
            _drop_tracebacks(timeout)
        states = worker_states(client)
        now = time.perf_counter()
        lost = workers - set(states)
        paused = {a: states[a] for a in workers & set(states) if states[a].get("status") == "paused"}
        overdue = _held_past(paused_since, paused, now, paused_grace_s)
        if lost or overdue:
            raise WorkersUnavailable(lost, overdue)
        if stalls is not None:
            stalls.check(client, states)
        if now >= report_at and not quiet:
            logger.warning("dask_dl: %s has waited %.0f s (expected ~%.1f s): %s", what, now - start, expected_s,
                           describe(client, workers, states))
            report_at = now + 2 * (now - start)


def _held_past(since: dict, current: dict, now: float, limit_s: float) -> dict:
    """The items of ``current`` held for ``limit_s`` or more: ``since`` (updated here) keeps when
    each key of ``current`` was first seen in an unbroken run of calls; a key that left starts again."""
    for k in list(since):
        if k not in current:
            del since[k]
    for k in current:
        since.setdefault(k, now)
    return {k: v for k, v in current.items() if now - since[k] >= limit_s}


class RoundStallWatch:
    """Bounds a training round's (or scoring's) wait: TasksStalled once a key of ``watched`` has
    been processing on a worker (its inputs all computed: the scheduler's "processing") for
    ``limit_s``, as seen from half of it on (a normal wait never asks). A key back in "waiting" (an
    input lost and recomputed) starts its clock again."""

    def __init__(self, watched, limit_s: float):
        self.watched, self.limit_s = {str(k) for k in watched}, limit_s
        self.start = time.perf_counter()
        self.since: dict = {}  # {key: when it was first seen processing}

    def check(self, client, states: dict) -> None:
        now = time.perf_counter()
        if now - self.start < self.limit_s / 2:
            return
        # on any worker: a task may run away from the one it was meant for
        now_processing = {str(k): a for a, keys in client.processing().items() for k in keys
                          if str(k) in self.watched}
        stalled = _held_past(self.since, now_processing, now, self.limit_s)
        if stalled:
            raise TasksStalled(stalled, max(now - self.since[k] for k in stalled), self.limit_s,
                               describe(client, set(stalled.values()), states))


class SetupStallWatch:
    """Bounds a set-up wait on a task that never ends (a hung thread, a storage read that never
    returns). Set-up tasks have no timed reference like a training round's, so each task executing
    towards the waited-for keys is compared with the tasks of its kind (key prefix) that finished in
    the wait: a task seen executing counts with its last-seen time, one that ended unseen with the
    time since the previous look (plus the heartbeats' lag). The scheduler is asked once a second
    (less often for a graph whose walk takes over 20 ms), from the wait's first second on: a short
    wait never asks."""

    def __init__(self, keys: list):
        self.keys = list(keys)
        self.last_look = time.perf_counter()
        self.executing: dict = {}   # {key: (worker, seconds, prefix)} at the last look
        self.longest: dict = {}     # {prefix: the longest a finished task of it can have executed}
        self.broken = False         # the scheduler could not be asked: no bound (logged once)
        self.look_s = 0.0           # what the last look took

    def limit_s(self, prefix: str) -> float:
        longest = self.longest.get(prefix)
        return SETUP_STALL_ALONE_S if longest is None else max(SETUP_STALL_MIN_S, SETUP_STALL_FACTOR * longest)

    def check(self, client, states: dict) -> None:
        """Raise TasksStalled when a task the keys wait on has executed past its ``limit_s``."""
        now = time.perf_counter()
        if self.broken or now - self.last_look < max(SETUP_LOOK_S, 50 * self.look_s):
            return  # a look walks the step's graph on the scheduler: at most 2% of its time
        try:
            executing, in_memory = client.run_on_scheduler(_executing_towards_function(), keys=self.keys)
        except Exception as err:  # noqa: BLE001 - e.g. a scheduler that refuses pickled functions
            self.broken = True
            logger.warning("dask_dl: cannot watch the set-up for stalled tasks (%s): a hung task would be "
                           "waited for", err)
            return
        self.look_s = time.perf_counter() - now
        since_last, self.last_look = now - self.last_look, now
        for key, (_, seconds, prefix) in self.executing.items():
            if key not in executing:  # ended since the last look
                self.longest[prefix] = max(self.longest.get(prefix, 0.0), seconds + since_last)
        for prefix in set(in_memory) - set(self.longest):  # ended unseen: within one look and a heartbeat
            self.longest[prefix] = since_last + HEARTBEAT_LAG_S
        self.executing = executing
        limits = {k: self.limit_s(prefix) for k, (_, _, prefix) in executing.items()}
        stalled = {str(k): w for k, (w, seconds, _) in executing.items() if seconds >= limits[k]}
        if stalled:
            over = [k for k in executing if str(k) in stalled]
            raise TasksStalled(stalled, max(executing[k][1] for k in over), min(limits[k] for k in over),
                               describe(client, set(stalled.values()), states), state="executing")


def _executing_towards_function():
    """The scheduler-side lookup, defined in a function so that it travels by value: the scheduler
    need not have dask_dl installed."""
    def executing_towards(dask_scheduler, keys):
        """({key: (worker, seconds executing, key prefix)} of the executing tasks whose results
        ``keys`` need, {key prefixes of those tasks already in memory})."""
        todo = [dask_scheduler.tasks[k] for k in keys if k in dask_scheduler.tasks]
        closure = set()
        while todo and len(closure) < 1_000_000:
            ts = todo.pop()
            if ts not in closure:
                closure.add(ts)
                todo.extend(ts.dependencies)
        executing = {ts.key: (ws.address, float(seconds), ts.prefix.name)
                     for ws in dask_scheduler.workers.values()
                     for ts, seconds in dict(getattr(ws, "executing", {})).items() if ts in closure}
        return executing, {ts.prefix.name for ts in closure if ts.state == "memory"}
    return executing_towards


def wait_all(client, futures: list, *, what: str, quiet: bool = False) -> None:
    """A set-up wait (statistics, encoding, sampling): Dask recomputes a lost worker's tasks on
    the others, so a lost or paused worker is reported and waited past; it fails with the reason
    when no worker is left running, when paused workers have held the work up for
    SETUP_PAUSED_GIVE_UP_S, or when a task it waits on stalls (``SetupStallWatch``)."""
    paused_since = None
    stalls = SetupStallWatch([f.key for f in futures])
    while True:
        states = worker_states(client) or (time.sleep(0.2), worker_states(client))[1]
        if not running(states):
            raise ClusterUnavailableError(f"{what} cannot go on: no worker is running "
                                          f"({describe(client, set(states), states)})")
        try:
            wait_for(client, futures, workers=set(states), what=what, quiet=quiet, stalls=stalls)
            return
        except TasksStalled as stuck:
            raise ClusterUnavailableError(f"{what} cannot go on: {stuck}") from None
        except WorkersUnavailable as gone:  # kept as text: a log record must not keep its traceback
            message, paused = str(gone), bool(gone.paused)
        paused_since = (paused_since or time.perf_counter()) if paused else None
        if paused and time.perf_counter() - paused_since > SETUP_PAUSED_GIVE_UP_S:
            raise ClusterUnavailableError(f"{what} cannot go on: {message}")
        logger.warning("dask_dl: %s: %s; the other workers take over its work", what, message)


def _drop_tracebacks(err: BaseException) -> None:
    """Cut an exception chain's tracebacks: their frames hold the waited-for futures in reference
    cycles, which kept a finished fit's tasks on the cluster until the garbage collector ran."""
    for each in exception_chain(err):
        each.__traceback__ = None


def describe(client, workers, states: dict | None = None) -> str:
    """One line on what each of ``workers`` is doing: lost, paused (memory figures), or its tasks."""
    states = worker_states(client) if states is None else states
    try:
        processing = client.processing(sorted(a for a in workers if a in states))
    except Exception:  # noqa: BLE001 - a diagnosis must not fail the wait
        processing = {}
    parts = []
    for a in sorted(workers):
        if a not in states:
            parts.append(f"{a} lost")
        elif states[a].get("status") == "paused":
            parts.append(f"{a} paused for memory ({_memory_text(states[a])})")
        else:
            tasks = [str(k) for k in processing.get(a, ())]
            doing = ", ".join(tasks[:3]) + (f" and {len(tasks) - 3} more" if len(tasks) > 3 else "")
            parts.append(f"{a} computing {doing}" if tasks else f"{a} {states[a].get('status', '?')}, idle")
    return "; ".join(parts)


def _memory_text(state: dict) -> str:
    used = (state.get("metrics") or {}).get("memory") or 0
    limit = state.get("memory_limit") or 0
    return f"{used / 2**20:.0f} MiB used" + (f" of a {limit / 2**20:.0f} MiB limit" if limit else "")
