"""H2O's ``categorical_encoding`` for Deep Learning: how a categorical column becomes inputs.

Every encoding is a function of per-level statistics the one statistics pass already gathers (level
counts; per-level response sums for SortByResponse), so no extra pass over the data is needed:

    AUTO, OneHotInternal  one slot per level + a missing slot (H2O's internal one-hot, §2.2)
    EnumLimited           one-hot of the ENUM_LIMIT most frequent levels; the others share the missing slot
    Binary                the level's index + 1 in binary, one 0/1 input per bit (NA and unseen: all 0)
    LabelEncoder          the level's index (levels in lexicographic order) as one standardised number
    SortByResponse        the level's rank by mean response as one standardised number
    Eigen                 the one-hot vector projected on the first principal component of the
                          column's one-hot covariance, as one standardised number

``max_categorical_features`` hashes the one-hot slots of every one-hot column into that many
inputs (H2O's MurmurHash2 of the slot index, §2.7) when the one-hot width would exceed it.
"""
from __future__ import annotations

import numpy as np

from ..names import CATEGORICAL_ENCODINGS  # noqa: F401 - the vocabulary lives with H2O's others

ONE_HOT = ("AUTO", "OneHotInternal", "EnumLimited")
VALUED = ("LabelEncoder", "SortByResponse", "Eigen")  # one number per level
ENUM_LIMIT = 10  # EnumLimited keeps this many levels (H2O's default T)


def is_one_hot(encoding: str) -> bool:
    return encoding in ONE_HOT


def binary_bits(n_levels: int) -> int:
    """Bits of Binary's codes 1..n_levels (0 stands for NA and unseen levels)."""
    return max(1, int(n_levels).bit_length())


def width(encoding: str, n_levels: int, use_all_levels: bool) -> int:
    """Inputs a categorical column takes (before hashing)."""
    if is_one_hot(encoding):
        return n_levels + 1 if use_all_levels else n_levels
    return binary_bits(n_levels) if encoding == "Binary" else 1


def slot_names(name: str, encoding: str, levels: list, use_all_levels: bool) -> list:
    """H2O's expanded input names: ``col.level`` and ``col.missing(NA)``, ``col.bit<j>``, or ``col``."""
    if is_one_hot(encoding):
        shown = levels if use_all_levels else levels[1:]
        return [f"{name}.{lv}" for lv in shown] + [f"{name}.missing(NA)"]
    if encoding == "Binary":
        return [f"{name}.bit{j}" for j in range(binary_bits(len(levels)))]
    return [name]


def kept_levels(encoding: str, counts: dict) -> list:
    """The training levels, sorted (H2O's domain order); EnumLimited: the ENUM_LIMIT most frequent."""
    levels = sorted(counts)
    if encoding != "EnumLimited" or len(levels) <= ENUM_LIMIT:
        return levels
    top = sorted(levels, key=lambda lv: -counts[lv])[:ENUM_LIMIT]  # stable: ties keep domain order
    return sorted(top)


def level_values(encoding: str, levels: list, counts: dict, response_means: dict | None) -> np.ndarray:
    """The number each level stands for in a VALUED encoding."""
    if encoding == "LabelEncoder":
        return np.arange(len(levels), dtype=np.float64)
    if encoding == "SortByResponse":
        means = np.array([response_means.get(lv, np.nan) for lv in levels])
        order = np.argsort(np.where(np.isnan(means), np.inf, means), kind="stable")
        ranks = np.empty(len(levels))
        ranks[order] = np.arange(len(levels))
        return ranks
    return _first_component(np.array([counts[lv] for lv in levels], dtype=np.float64))


def _first_component(counts: np.ndarray) -> np.ndarray:
    """The first eigenvector of the one-hot covariance diag(p) - p p^T (p: the level shares), its
    largest entry positive: each level's projection on the first principal component."""
    p = counts / counts.sum()
    if len(p) <= 2000:
        _, vecs = np.linalg.eigh(np.diag(p) - np.outer(p, p))
        v = vecs[:, -1]
    else:  # a wide column: the operator without the K x K matrix
        from scipy.sparse.linalg import LinearOperator, eigsh
        op = LinearOperator((len(p), len(p)), matvec=lambda x: p * x - p * (p @ x), dtype=np.float64)
        v = eigsh(op, k=1, which="LA")[1][:, 0]
    return v if v[np.argmax(np.abs(v))] > 0 else -v


def value_moments(values: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """(mean, sample standard deviation) of a VALUED column over its training rows."""
    n = counts.sum()
    mean = float(values @ counts / n)
    var = float(((values - mean) ** 2) @ counts / (n - 1)) if n > 1 else 0.0
    return mean, float(np.sqrt(var))


def one_hot_slots(codes: np.ndarray, n_levels: int, use_all_levels: bool) -> np.ndarray:
    """Each row's one-hot slot in its column's block: the level's, the missing slot (the last) for
    NA and levels not kept, -1 (no slot) for the first level without use_all_factor_levels."""
    if use_all_levels:
        return np.where(codes < 0, n_levels, codes)
    return np.where(codes < 0, n_levels - 1, codes - 1)


def write(X: np.ndarray, at: int, col, codes: np.ndarray, use_all_levels: bool) -> None:
    """Fill a non-hashed column's inputs X[:, at:at + width] from its level codes (-1: NA or a level
    not kept), X zero on entry."""
    if is_one_hot(col.encoding):
        slot = one_hot_slots(codes, len(col.levels), use_all_levels)
        rows = np.flatnonzero(slot >= 0)
        X[rows, at + slot[rows]] = 1.0
    elif col.encoding == "Binary":
        v = codes + 1  # NA / unseen -> 0
        for j in range(binary_bits(len(col.levels))):
            X[:, at + j] = (v >> j) & 1
    else:
        scale = 1.0 / col.sigma if col.sigma > 0 else 1.0
        vals = (np.asarray(col.values, dtype=np.float64) - col.mean) * scale
        X[:, at] = np.where(codes < 0, 0.0, vals[np.maximum(codes, 0)])  # NA: the mean, 0 once standardised


def murmur_slot(index: np.ndarray, seed: int, n_slots: int) -> np.ndarray:
    """H2O's hashed slot of one-hot indices (§2.7): |MurmurHash2(index) mod n_slots|, the 32-bit
    Hadoop variant over the index's 4 bytes, arithmetic wrapping in uint32."""
    m = np.uint32(0x5BD1E995)
    c = np.asarray(index, dtype=np.int64).astype(np.uint32)
    k = c.byteswap()  # serialised big-endian, read back little-endian
    with np.errstate(over="ignore"):
        k = k * m
        k ^= k >> np.uint32(24)
        k = k * m
        h = np.full_like(k, np.uint32((seed ^ 4) & 0xFFFFFFFF)) * m
        h ^= k
        h ^= h >> np.uint32(13)
        h = h * m
        h ^= h >> np.uint32(15)
    signed = h.astype(np.int32).astype(np.int64)
    return np.abs(np.fmod(signed, n_slots)).astype(np.int64)
