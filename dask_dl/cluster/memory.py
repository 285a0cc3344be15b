"""The workers' memory limits and the encoded data's size: what decides streaming and replication."""
from __future__ import annotations


def memory_limits(client) -> list:
    """Every worker's memory limit in bytes (0 where a worker has none)."""
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # older distributed
        workers = client.scheduler_info()["workers"]
    return [w.get("memory_limit") or 0 for w in workers.values()]


def encoded_bytes(info) -> int:
    """Size of the encoded float32 training data (inputs + response)."""
    return int(info.n_rows * (info.n_inputs + 1) * 4)
