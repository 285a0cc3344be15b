"""Re-plan placed training data for the workers available now: a lost (or paused) worker's share
goes to the others, a worker that joined takes a share. The loop calls it between rounds; data
stays where it is wherever it can (a lost worker's blocks are recomputed by Dask from their
lineage where a survivor's task needs them)."""
from __future__ import annotations

import dataclasses

from ..errors import ClusterUnavailableError
from .placement import TrainingData
from .replication import replicate_blocks
from .streaming import regroup_sources, scatter_sources


def replan(client, data: TrainingData, workers: list, *, single_worker: bool = False,
           quiet: bool = False) -> TrainingData:
    """``data`` laid out over ``workers`` (those available now, in any order)."""
    workers = sorted(workers)
    if not workers:
        raise ClusterUnavailableError("no Dask worker is available to train on")
    if data.streaming:
        sources = regroup_sources(data.sources, workers[:1] if single_worker else workers)
        return dataclasses.replace(data, sources=sources, blocks_by_worker=scatter_sources(client, sources),
                                   rows_by_worker={w: sum(s.rows) for w, s in sources.items()})
    if single_worker:
        holder = next((w for w in data.blocks_by_worker if w in workers), workers[0])
        by_worker = {holder: list(data.blocks)}
    elif data.replicated:
        by_worker = _replicated(client, data, workers, quiet)
    else:
        by_worker = _rebalanced(data, workers)
    if data.replicated and not single_worker:  # every worker holds every row
        rows = {w: data.n_rows for w in by_worker}
    else:
        rows = {w: sum(data.block_rows[f.key] for f in fs) for w, fs in by_worker.items()}
    return dataclasses.replace(data, blocks_by_worker=by_worker, rows_by_worker=rows)


def _replicated(client, data: TrainingData, workers: list, quiet: bool) -> dict:
    """Survivors keep their copies; a new worker gets its own copies of every block."""
    kept = {w: fs for w, fs in data.blocks_by_worker.items() if w in workers}
    new = [w for w in workers if w not in kept]
    if new:
        kept.update(replicate_blocks(client, list(data.blocks), new, quiet=quiet))
    return kept


def _rebalanced(data: TrainingData, workers: list) -> dict:
    """Partitioned data: a lost worker's blocks go to the workers with the fewest rows; a worker
    with none takes blocks from the fullest while that evens the rows out."""
    out = {w: list(data.blocks_by_worker.get(w, [])) for w in workers}
    orphans = [f for w, fs in data.blocks_by_worker.items() if w not in out for f in fs]

    def rows(w):
        return sum(data.block_rows[f.key] for f in out[w])

    for f in orphans:
        out[min(out, key=rows)].append(f)
    for w in [w for w in workers if not out[w]]:
        while True:
            fullest = max(out, key=rows)
            if len(out[fullest]) < 2 or rows(fullest) - data.block_rows[out[fullest][-1].key] < rows(w):
                break
            out[w].append(out[fullest].pop())
    return {w: fs for w, fs in out.items() if fs}
