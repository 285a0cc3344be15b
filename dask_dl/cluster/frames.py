"""Hand each partition of a training frame to the set-up tasks, straight from its future when the
frame is persisted partitions (the user's ``df.persist()``), inside the tasks when it is in memory on
the client (a pandas frame, or ``dd.from_pandas`` of one), else through ``to_delayed()``.

Every use of dask-expr internals is in ``_graph_sources`` and ``_from_pandas_parts``;
tests/test_frames.py fails loudly when a dask upgrade changes them.
"""
from __future__ import annotations

import itertools
import uuid

import dask
import pandas as pd
from distributed import Future, futures_of

from ..errors import DataError
from ..task_names import task_key
from .watch import wait_all


class InMemoryFrame:
    """A frame held by the client, cut into partitions that ride inside the set-up tasks as
    arguments: no partition of it is stored on a worker, where Dask's ``sizeof`` walk over a wide
    frame's columns took 10-100 ms a partition. A pandas frame is cut into ``npartitions`` row
    ranges (``dd.from_pandas(sort=False)``'s); ``of_dask`` takes a ``dd.from_pandas`` frame's own."""

    def __init__(self, frame, n_parts: int):
        n = max(1, min(n_parts, len(frame)))
        sizes = [len(frame) // n + (i < len(frame) % n) for i in range(n)]  # np.array_split's
        bounds = [0, *itertools.accumulate(sizes)]
        self._set([frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])], frame.columns, None)

    @classmethod
    def of_dask(cls, frame, n_parts: int | None = None) -> "InMemoryFrame | None":
        """The partitions of a frame that IS ``dd.from_pandas(pandas frame)`` (or a column
        selection or rename of one), each as its dask task would make it, or its rows re-cut into
        ``n_parts`` row ranges when it has another number of partitions; None for any other frame."""
        found = _from_pandas_parts(frame)
        if found is None:
            return None
        parts, columns, rename = found
        if n_parts is not None and n_parts != len(parts):
            whole = parts[0] if len(parts) == 1 else pd.concat(parts)
            return cls(whole.rename(columns=rename) if rename else whole, n_parts)
        self = cls.__new__(cls)
        self._set(parts, columns, rename)
        return self

    def _set(self, parts: list, columns, rename: dict | None) -> None:
        self.parts, self.columns, self.rename = parts, columns, rename
        self.name = f"in-memory-{uuid.uuid4().hex}"  # the parts' keys, as a persisted frame's are

    @property
    def npartitions(self) -> int:
        return len(self.parts)

    def renamed_parts(self) -> list:
        """The parts with the frame's column names (the set-up tasks rename theirs themselves)."""
        return [p.rename(columns=self.rename) for p in self.parts] if self.rename else self.parts

    def to_delayed(self) -> list:
        """The parts as graph keys of their own (out of core: the streamed sources name them)."""
        return [dask.delayed(p, name=(self.name, i)) for i, p in enumerate(self.renamed_parts())]


def client_held_parts(frame) -> list | None:
    """The partitions of a dask frame that IS ``dd.from_pandas`` of a pandas frame (see
    ``_from_pandas_parts``), with the frame's column names, for passes the client can run itself;
    None for any other frame."""
    held = InMemoryFrame.of_dask(frame)
    return None if held is None else held.renamed_parts()


def _outer_rename(expr):
    """(the expression under a ``frame.rename(columns=dict)``, the dict), or (expr, None)."""
    if type(expr).__name__ == "RenameFrame" and isinstance(expr.operand("columns"), dict):
        return expr.operand("frame"), dict(expr.operand("columns"))
    return expr, None


def _leaves(expr) -> list:
    """The expressions at the bottom of ``expr``'s graph (those without dependencies)."""
    if expr is None:
        return []
    deps = expr.dependencies()
    return [expr] if not deps else [leaf for d in deps for leaf in _leaves(d)]


def _from_pandas_parts(frame):
    """(the partitions, the frame's columns, {old: new} column rename or None) when ``frame`` IS
    ``dd.from_pandas(pandas frame)``, a column selection or drop of one, or a column rename over
    either; else None.

    Relies on dask >= 2025.1 (dask-expr, tested with 2026.8): the optimized expression of such a
    frame (``optimize(fuse=False)`` absorbs the selection) is a ``FromPandas`` whose operands
    ``"_partitions"`` (None: not filtered) and ``"_series"`` say it is the whole frame, and whose
    ``_filtered_task(name, i).value`` is partition ``i`` as its task makes it (sorted by the index,
    pyarrow strings, projected). If dask changes them, this returns None and such frames take the
    ``to_delayed()`` path: still correct, only slower."""
    if "FromPandas" not in {type(e).__name__ for e in _leaves(getattr(frame, "expr", None))}:
        return None
    expr, rename = _outer_rename(frame.optimize(fuse=False).expr)
    if type(expr).__name__ != "FromPandas":
        return None
    try:
        if expr.operand("_partitions") is not None or expr.operand("_series"):
            return None
        parts = [expr._filtered_task(None, i).value for i in range(expr.npartitions)]
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    if not parts or not all(isinstance(p, pd.DataFrame) for p in parts):
        return None
    return parts, frame.columns, rename


def _graph_sources(frame):
    """(the values of the graph layer the frame reads, {old: new} column rename or None) when
    ``frame`` IS a graph of already computed partitions, or a column rename over one; else None.

    Relies on dask >= 2025.1 (dask-expr, tested with 2026.8): a persisted collection's expression
    is a ``FromGraph`` whose ``operand("layer")`` maps each partition's key to its ``Future``, and
    ``frame.rename(columns=dict)`` is a ``RenameFrame`` with operands ``"frame"`` and ``"columns"``.
    If dask changes either, this returns None and every frame takes the ``to_delayed()`` path:
    still correct, only slower (see ``persist_if_in_memory``)."""
    expr, columns = _outer_rename(getattr(frame, "expr", None))
    if type(expr).__name__ != "FromGraph":
        return None
    return list(expr.operand("layer").values()), columns


def _persisted_futures(values, npartitions: int):
    """The futures, in partition order, when ``values`` are exactly one persisted collection's
    ``npartitions`` partitions (keys ``(name, i)``), else None."""
    futures = [f for f in values if isinstance(f, Future)]
    if len(futures) != npartitions or not all(isinstance(f.key, tuple) and len(f.key) == 2 for f in futures) \
            or len({f.key[0] for f in futures}) != 1:
        return None
    ordered = sorted(futures, key=lambda f: f.key[1])
    return ordered if [f.key[1] for f in ordered] == list(range(npartitions)) else None


def _direct_sources(frame):
    """[(future, columns to rename or None)] per partition when ``frame`` IS persisted partitions or
    a column rename over them (the estimators' response rename), else None."""
    found = _graph_sources(frame)
    if found is None:
        return None
    values, columns = found
    futures = _persisted_futures(values, frame.npartitions)
    return None if futures is None else [(f, columns) for f in futures]


def partition_futures(frame) -> list | None:
    """The futures of the frame's partitions in order when it IS persisted partitions (or a column
    rename over them), else None."""
    direct = _direct_sources(frame)
    return None if direct is None else [f for f, _ in direct]


def persist_if_in_memory(client, frame):
    """Persist a frame built on persisted partitions (a projection, an ``assign``...) so that the
    set-up passes can hand each partition's future to their tasks: ``to_delayed()`` of such a frame
    re-materialises every partition in every pass. Frames read from storage are left alone (holding
    the raw data beside the encoded blocks would double the memory), and so are frames the
    set-up already takes from futures (``partition_calls`` renames inside its tasks)."""
    if not futures_of(frame) or _direct_sources(frame) is not None:
        return frame
    frame = client.persist(frame)
    wait_all(client, futures_of(frame), what="persisting the frame")
    return frame


def _call_on(fn, part, columns, index: int, *args):
    """``fn(part, *args)``, the partition's columns renamed first (pandas copy-on-write: no data
    copied). An error names the partition it came from (it reaches the client with the worker's
    traceback)."""
    try:
        return fn(part.rename(columns=columns) if columns else part, *args)
    except DataError as err:
        raise DataError(f"{err} (partition {index} of the data)") from None
    except Exception as err:
        err.add_note(f"dask_dl: raised while working on partition {index} of the data")
        raise


def partition_calls(fn, frame, *args, what: str | None = None) -> list:
    """``dask.delayed(fn)(partition, *args)`` for every partition of ``frame``, in order. Persisted
    partitions go to ``fn``'s task straight from their futures (renamed inside it where the frame
    renames them): no dask-dataframe task and no intermediate frame stored on the worker, whose
    ``sizeof`` walk over the columns costs time. Anything else goes through ``to_delayed()``.
    ``what`` names the tasks on the dashboard (``dask_dl-<what>``; default: ``fn``'s name)."""
    what = what or getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", "partition")
    common = dask.base.tokenize(fn, *args)  # once: tokenizing a wide DataInfo is not free
    if isinstance(frame, InMemoryFrame):  # each part inside its task: no dask-dataframe task, nothing to sizeof
        return [dask.delayed(_call_on)(fn, part, frame.rename, i, *args,
                                       dask_key_name=task_key(what, common, frame.name, i))
                for i, part in enumerate(frame.parts)]
    direct = _direct_sources(frame)
    if direct is None:
        direct = [(p, None) for p in frame.to_delayed()]
    return [dask.delayed(_call_on)(fn, f, columns, i, *args,
                                   dask_key_name=task_key(what, common, f.key, columns))
            for i, (f, columns) in enumerate(direct)]
