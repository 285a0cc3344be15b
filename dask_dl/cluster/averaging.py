"""Tree reduction of the per-worker model copies, on the workers; only the average reaches the client."""
from __future__ import annotations

from .tasks import weighted_mean


def tree_average(client, futures: list, fit_key: str):
    """Pairwise tree of weighted-mean tasks over ``futures`` of (state, samples); returns one future.

    Each combine task runs where one of its inputs lives, so copies move worker-to-worker, never
    through the client (depth log2(workers))."""
    level = list(futures)
    depth = 0
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level) - 1, 2):
            nxt.append(client.submit(weighted_mean, level[i], level[i + 1], pure=False,
                                     key=f"dask_dl-average-{fit_key}-{depth}-{i}"))
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        depth += 1
    return level[0]
