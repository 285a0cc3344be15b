"""DataInfo: column roles, categorical levels, means and sigmas — computed in ONE distributed pass.

DataInfo is small (a few numbers per column), travels with the model (JSON-serialisable) and is
broadcast to workers to encode partitions. The input layout follows H2O: categorical blocks first,
sorted by decreasing cardinality, then the numeric columns in frame order; every categorical block
ends with a "missing" slot.
"""
from __future__ import annotations

import datetime as dt
import decimal
import math
import numbers
import uuid
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError
from ..names import LOG_LINK_DISTRIBUTIONS, NO_HASHING
from . import categorical as encodings

RESPONSE = "__dask_dl_response__"  # internal name of the response column inside training frames
WEIGHT = "__dask_dl_weight__"      # the observation weights (weights_column or fit's sample_weight)
OFFSET = "__dask_dl_offset__"      # the offset_column (regression)
ROLE_COLUMNS = (RESPONSE, WEIGHT, OFFSET)  # columns of a training frame that are not features


def feature_columns(frame) -> list:
    """The frame's columns that are features: every column but the response, weights and offset."""
    return [c for c in frame.columns if c not in ROLE_COLUMNS]


@dataclass
class ColumnInfo:
    name: str
    kind: str                       # "numeric" | "categorical"
    mean: float = 0.0
    sigma: float = 1.0
    min: float = 0.0
    max: float = 0.0
    na_count: int = 0
    levels: list = field(default_factory=list)
    encoding: str = "OneHotInternal"  # categorical_encoding (data/categorical.py)
    values: list = field(default_factory=list)  # LabelEncoder, SortByResponse, Eigen: each level's number

    @property
    def one_hot(self) -> bool:
        return self.kind == "categorical" and encodings.is_one_hot(self.encoding)


@dataclass
class DataInfo:
    """Everything needed to turn a raw partition into the network's input (and back)."""
    feature_names: list             # input columns as the user gave them, in order
    columns: list                   # ColumnInfo of the USED columns, in input-layout order
    ignored: list                   # [(name, reason)]
    standardize: bool
    use_all_factor_levels: bool
    skip_missing: bool
    response_name: str
    response_kind: str              # "classification" | "regression" | "autoencoder" (no response)
    classes: list = field(default_factory=list)
    response_mean: float = 0.0
    response_sigma: float = 1.0
    standardize_response: bool = False
    n_rows: int = 0                 # training rows with a response (the epoch denominator)
    n_rows_total: int = 0
    sparse: bool = False            # H2O's DESCALE: zeros stay zero (no centring), so fast_mode skips them
    class_factors: list | None = None  # balance_classes: each class's sampling factor (rows emitted per row)
    class_priors: list | None = None   # balance_classes: class shares before and after balancing, for the
    class_balanced: list | None = None  # probability correction p_c * prior_c / balanced_c
    zero_weight_rows: int = 0       # rows with a response and weight 0 (they do not train)
    hash_slots: int = 0             # max_categorical_features: the one-hot inputs hashed into this many (0: none)
    hash_seed: int = 0
    weights_column: str | None = None  # the column of observation weights (None: none, or fit's sample_weight)
    offset_column: str | None = None   # the offset's name: predict needs it (added in link space)

    def __dask_tokenize__(self) -> str:
        """This object's identity, drawn once: tokenizing every column's statistics for each task
        graph is slow on wide data, and a fit does not change its DataInfo after placement starts."""
        token = self.__dict__.get("_dask_token")
        if token is None:
            token = self.__dict__["_dask_token"] = uuid.uuid4().hex
        return token

    # ---------------------------------------------------------------------------------- layout
    def one_hot_width(self, col: ColumnInfo) -> int:
        """The inputs a column takes before hashing."""
        if col.kind == "numeric":
            return 1
        return encodings.width(col.encoding, len(col.levels), self.use_all_factor_levels)

    def block_width(self, col: ColumnInfo) -> int:
        """The inputs a column takes (0 for a one-hot column hashed into the first hash_slots)."""
        return 0 if self.hash_slots and col.one_hot else self.one_hot_width(col)

    @property
    def n_inputs(self) -> int:
        return self.hash_slots + sum(self.block_width(c) for c in self.columns)

    def offsets(self) -> list:
        off, out = self.hash_slots, []
        for c in self.columns:
            out.append(off)
            off += self.block_width(c)
        return out

    def coef_names(self) -> list:
        """H2O's expanded input names: ``col.level``, ``col.missing(NA)``, ``col`` (and the hashed
        inputs, ``categorical_hash.<i>``, first)."""
        names = [f"categorical_hash.{i}" for i in range(self.hash_slots)]
        for c in self.columns:
            if c.kind == "numeric":
                names.append(c.name)
            elif self.block_width(c):
                names.extend(encodings.slot_names(c.name, c.encoding, c.levels, self.use_all_factor_levels))
        return names

    def hash_tables(self) -> dict:
        """{column: the hashed input of each of its one-hot slots} (max_categorical_features): the
        slots are numbered as the unhashed one-hot layout numbers them, then hashed (H2O §2.7)."""
        tables = self.__dict__.get("_hash_tables")
        if tables is None:
            tables, at = {}, 0
            for c in self.columns:
                if c.one_hot:
                    width = self.one_hot_width(c)
                    tables[c.name] = encodings.murmur_slot(np.arange(at, at + width), self.hash_seed, self.hash_slots)
                    at += width
            self.__dict__["_hash_tables"] = tables
        return tables

    @property
    def autoencoder(self) -> bool:
        return self.response_kind == "autoencoder"

    def sub_mul(self, col: ColumnInfo) -> tuple:
        """(sub, mul) of a numeric column: H2O's STANDARDIZE, DESCALE (sparse), NORMALIZE
        (autoencoders: 1 / (max - min)) or NONE."""
        if not self.standardize:
            return 0.0, 1.0
        if self.autoencoder:
            return col.mean, 1.0 / (col.max - col.min) if col.max > col.min else 1.0
        return 0.0 if self.sparse else col.mean, 1.0 / col.sigma if col.sigma > 0 else 1.0

    # ------------------------------------------------------------------------------ response
    @property
    def n_train_rows(self) -> int:
        """The rows the training blocks hold: n_rows, or its expected count after class balancing."""
        if not self.class_factors:
            return self.n_rows
        return int(round(sum(f * s for f, s in zip(self.class_factors, self.class_priors)) * self.n_rows))

    def prior_ratio(self) -> np.ndarray | None:
        """p_c is multiplied by this (then renormalised) to undo class balancing, as H2O: prior_c /
        balanced_c, 1 where either is 0; None without balancing."""
        if not self.class_factors:
            return None
        prior, bal = np.asarray(self.class_priors, float), np.asarray(self.class_balanced, float)
        return np.where((prior > 0) & (bal > 0), prior / np.where(bal > 0, bal, 1.0), 1.0)

    def response_to_target(self, y: np.ndarray) -> np.ndarray:
        if self.standardize_response:
            return (y - self.response_mean) / self.response_sigma
        return y

    @property
    def roles(self) -> dict:
        """{column: "numeric" | "categorical"} of the columns the network reads."""
        return {c.name: c.kind for c in self.columns}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = [_jsonable(c) for c in self.classes]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DataInfo":
        """The DataInfo a ``to_dict`` document describes. Every field prediction depends on must be
        there and be sound (a missing mean would silently encode as 0.0): ValueError naming the
        field otherwise."""
        if not isinstance(d, dict):
            raise ValueError(f"metadata field 'info' is {type(d).__name__}, not an object")
        _require(d, _INFO_FIELDS + _RESPONSE_FIELDS.get(d.get("response_kind"), ()), "info")
        if d["response_kind"] not in _RESPONSE_FIELDS:
            raise ValueError(f"metadata field info.response_kind is {d['response_kind']!r}, not one of "
                             f"{list(_RESPONSE_FIELDS)}")
        d = dict(d)
        d["columns"] = [_column_from_dict(c, i) for i, c in enumerate(_list_field(d, "columns"))]
        d["ignored"] = [tuple(x) for x in _list_field(d, "ignored")]
        if d["response_kind"] == "classification" and len(_list_field(d, "classes")) < 2:
            raise ValueError(f"metadata field info.classes holds {d['classes']!r}, not two or more classes")
        if d["response_kind"] == "regression":
            for key in ("response_mean", "response_sigma"):
                _finite_field(d[key], f"info.{key}")
        if d["response_kind"] == "autoencoder":  # NORMALIZE reads each numeric column's range
            for i, c in enumerate(d["columns"]):
                if c.kind == "numeric":
                    _finite_field(c.max - c.min, f"info.columns[{i}].min/max (column {c.name!r})")
        return cls(**d)


_INFO_FIELDS = ("feature_names", "columns", "ignored", "standardize", "use_all_factor_levels", "skip_missing",
                "response_name", "response_kind")
_RESPONSE_FIELDS = {"classification": ("classes",),
                    "regression": ("response_mean", "response_sigma", "standardize_response"),
                    "autoencoder": ()}
_COLUMN_FIELDS = {"numeric": ("name", "kind", "mean", "sigma"), "categorical": ("name", "kind", "levels")}


def _require(d: dict, keys, where: str, note: str = "") -> None:
    missing = [k for k in keys if k not in d]
    if missing:
        raise ValueError(f"metadata field(s) {', '.join(f'{where}.{k}' for k in missing)}{note} missing")


def _list_field(d: dict, key: str) -> list:
    if not isinstance(d[key], list):
        raise ValueError(f"metadata field info.{key} is {type(d[key]).__name__}, not a list")
    return d[key]


def _finite_field(v, where: str) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"metadata field {where} is {v!r}, not a finite number")


def _column_from_dict(c, i: int) -> "ColumnInfo":
    """One ColumnInfo from its document, the fields its kind's encoding reads checked."""
    where = f"info.columns[{i}]"
    if not isinstance(c, dict):
        raise ValueError(f"metadata field {where} is {type(c).__name__}, not an object")
    kind = c.get("kind")
    if kind not in _COLUMN_FIELDS:
        raise ValueError(f"metadata field {where}.kind is {kind!r}, not 'numeric' or 'categorical'")
    _require(c, _COLUMN_FIELDS[kind], where, f" (column {c.get('name')!r})")
    if kind == "numeric":
        for key in ("mean", "sigma"):
            _finite_field(c[key], f"{where}.{key} (column {c['name']!r})")
    elif not isinstance(c["levels"], list) or not c["levels"] or not all(isinstance(v, str) for v in c["levels"]):
        raise ValueError(f"metadata field {where}.levels (column {c['name']!r}) is not a list of level strings")
    return ColumnInfo(**c)


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


# ------------------------------------------------------------------------------ column roles
def column_role(name, dtype) -> str:
    """'numeric' or 'categorical'; anything else is refused with the column's name."""
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        if pd.api.types.is_complex_dtype(dtype):
            raise DataError(f"column {name!r} has complex dtype {dtype}; expected a numeric (real) or "
                            "categorical (category/object/string) column")
        return "numeric"
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype) \
            or pd.api.types.is_string_dtype(dtype):
        return "categorical"
    raise DataError(f"column {name!r} has dtype {dtype}; expected a numeric or categorical "
                    "(category/object/string) column — convert it (e.g. datetimes to numbers) or drop it")


def check_response(frame, name: str, family: str) -> None:
    """Response checks that need no cluster: dtype always; content when the data is in memory
    (dask data gets the same checks in the statistics pass, before any training)."""
    dtype = frame.dtypes[RESPONSE]
    if family == "regression" and not (pd.api.types.is_numeric_dtype(dtype)
                                       and not pd.api.types.is_bool_dtype(dtype)):
        raise DataError(f"response {name!r} has dtype {dtype}; a DeepLearningRegressor needs a numeric "
                        "response (use DeepLearningClassifier for classes)")
    if not isinstance(frame, pd.DataFrame):
        return
    if len(frame) == 0:
        raise DataError("the training data has no rows")
    y = frame[RESPONSE]
    if y.isna().all():
        raise DataError(f"response {name!r} is entirely NA")
    if pd.api.types.is_float_dtype(y.dtype) and np.isinf(y.to_numpy(dtype=np.float64, na_value=np.nan)).any():
        what = "a regression target" if family == "regression" else "class labels"
        raise DataError(f"response {name!r} holds infinite values; {what} must be finite (NA rows are skipped)")
    if family != "regression" and y.nunique(dropna=True) < 2:
        raise DataError(f"response {name!r} has a single class {y.dropna().iloc[0]!r}; a classifier "
                        "needs at least 2")
    if y.notna().sum() < 2:
        raise DataError(f"response {name!r} has a value in only 1 row; training needs at least 2 rows")


def check_unique_columns(frame, what: str) -> None:
    """Column names must be unique (a duplicated name makes ``frame[name]`` a frame, not a column)."""
    names = pd.Index(frame.columns)
    if names.has_duplicates:
        dup = list(names[names.duplicated()].unique())
        raise DataError(f"{what} has duplicated column name(s) {dup[:10]}; every column needs its own name "
                        "(rename or drop the copies)")


def check_columns(frame, features, roles: dict, what: str, allow_extra=()) -> None:
    """``frame`` must hold every training feature, each column in ``roles`` with that role; other
    columns are an error unless named in ``allow_extra`` (True: any). The response column is exempt."""
    check_unique_columns(frame, what)
    cols = [c for c in frame.columns if c not in ROLE_COLUMNS]
    have, known = set(cols), set(features)
    missing = [c for c in features if c not in have]
    if missing:
        raise DataError(f"{what} lacks column(s) {missing} that the model was trained on")
    if allow_extra is not True:
        extra = [c for c in cols if c not in known and c not in allow_extra]
        if extra:
            raise DataError(f"{what} has column(s) {extra} that the model was not trained on")
    dtypes = frame.dtypes  # once: each frame.dtypes builds a Series of every column's dtype
    for c, role in roles.items():
        got = column_role(c, dtypes[c])
        if got != role:
            raise DataError(f"column {c!r} is {got} in {what} but was {role} in training")


def level_strings(s: pd.Series) -> pd.Series:
    """Categorical values as strings (NA stays NA), the form levels are stored in."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories.astype(str)
        codes = s.cat.codes.to_numpy()
        out = np.where(codes >= 0, np.asarray(cats, dtype=object)[np.maximum(codes, 0)], None)
        return pd.Series(out, index=s.index, dtype=object)
    mask = s.isna().to_numpy()
    out = s.astype(object).to_numpy(copy=True)
    out[~mask] = [str(v) for v in out[~mask]]
    out[mask] = None
    return pd.Series(out, index=s.index, dtype=object)


def level_counts(s: pd.Series) -> dict:
    """{level string: rows} of a categorical or string column, NA not counted. A pandas categorical
    is counted on its integer codes (a bincount), not through one Python string per row."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        check_level_values(s)
        return level_strings(s).value_counts(dropna=True).to_dict()
    codes = s.cat.codes.to_numpy()
    counts = np.bincount(codes[codes >= 0], minlength=len(s.cat.categories))
    out: dict = {}
    for name, n in zip(s.cat.categories.astype(str), counts):
        if n:  # declared but unused categories are not levels; two categories may print alike
            out[name] = out.get(name, 0) + int(n)
    return out


_LEVEL_KINDS = {"string", "empty", "boolean", "integer", "floating", "mixed-integer-float", "decimal"}


def check_level_values(s: pd.Series) -> None:
    """A categorical column's values become levels through ``str``: strings, numbers and bools do
    (1 and "1" are one level); datetimes, bytes, lists, dicts ... are refused with the column's name."""
    kind = pd.api.types.infer_dtype(s, skipna=True)  # one C pass; the common kinds end here
    if kind in _LEVEL_KINDS:
        return
    bad = next((v for v in s.dropna() if not isinstance(v, (str, bool, np.bool_, numbers.Real, decimal.Decimal))
                or isinstance(v, (np.datetime64, np.timedelta64, dt.date, dt.time, dt.timedelta))), None)
    if bad is None:
        return  # strings mixed with numbers: levels by their text
    if isinstance(bad, (dt.date, dt.time, dt.timedelta, np.datetime64, np.timedelta64)):
        hint = "convert them to numbers (e.g. pd.to_datetime(col).astype('int64')) or drop the column"
    elif isinstance(bad, (bytes, bytearray)):
        hint = "decode them to strings (e.g. col.str.decode('utf-8'))"
    else:
        hint = "expected strings or numbers, which become categorical levels"
    raise DataError(f"column {s.name!r} holds {type(bad).__name__} values (e.g. {str(bad)[:40]!r}); {hint}")


def level_codes(s: pd.Series, levels: list) -> np.ndarray:
    """Each row's index in ``levels`` (the training levels, as strings); -1 for NA and unseen levels.
    A pandas categorical maps its categories once and its integer codes through that table."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        return pd.Index(levels).get_indexer(level_strings(s))
    return through_categories(s, pd.Index(levels).get_indexer(s.cat.categories.astype(str)))


def through_categories(s: pd.Series, per_category: np.ndarray) -> np.ndarray:
    """Each row of categorical ``s`` mapped to ``per_category[its category]``, -1 for NA: a lookup
    computed once per category instead of once per row."""
    return np.append(per_category, -1)[s.cat.codes.to_numpy()]  # code -1 (NA) picks the appended -1


# ------------------------------------------------------------------------ per-partition stats
NUMERIC_CHUNK = 64  # numeric columns converted to float64 at a time (bounds the temporary copy)


def numeric_chunks(df: pd.DataFrame, columns: list, size: int = NUMERIC_CHUNK):
    """(column names, float64 matrix with NaN for NA, whether it can hold NaN) for ``size`` columns
    at a time: one block conversion per chunk, not one pandas Series per column (wide numeric data).
    Infinite values are refused with the column's name.

    The matrix is ONE buffer, refilled for every chunk: callers may write to it but must be done
    with it before asking for the next chunk (Dask's nanny sets MALLOC_TRIM_THRESHOLD_, so glibc
    maps every large temporary afresh and page-faults it)."""
    buf = np.empty((len(df), min(size, len(columns))), dtype=np.float64)
    for start in range(0, len(columns), size):
        cols = columns[start:start + size]
        sub = df[cols]
        v = buf[:, :len(cols)]
        plain = all(isinstance(t, np.dtype) and t.kind in "biuf" for t in sub.dtypes)
        if plain:
            # plain numpy columns hold no NA but NaN: convert in numpy, not through pandas's
            # na_value path; mixed kinds come out as objects
            np.copyto(v, sub.to_numpy(), casting="unsafe")
            if all(t.kind in "biu" for t in sub.dtypes):  # integers: no NaN, no infinity to scan for
                yield cols, v, False
                continue
        else:
            np.copyto(v, sub.to_numpy(dtype=np.float64, na_value=np.nan))
        inf = np.isinf(v)
        if inf.any():
            bad = cols[int(np.nonzero(inf.any(axis=0))[0][0])]
            raise DataError(f"column {bad!r} holds infinite values; expected finite numbers or NA")
        yield cols, v, True


def partition_stats(df: pd.DataFrame, numeric: list, categorical: list, response_kind: str,
                    role_names: tuple = (None, None), level_response: bool = False) -> dict:
    """Mergeable statistics of one partition: (n, mean, M2, min, max, na) per numeric column,
    level counts per categorical column, the response's statistics and, with observation weights,
    (rows with a response and weight 0, their total weight). ``role_names``: the user's names of
    the weights and the offset, for the errors of ``check_row_roles``; ``level_response``: each
    level's response sums too (categorical_encoding='SortByResponse')."""
    out = {"rows": len(df), "num": {}, "cat": {}}
    weights = check_row_roles(df, *role_names)
    if weights is not None:
        answered = df[RESPONSE].notna().to_numpy()
        out["w"] = (int((answered & (weights == 0)).sum()), float(weights[answered].sum()))
        if response_kind == "classification":  # the classes' weight, for class balancing
            out["wy"] = pd.Series(weights[answered]).groupby(df[RESPONSE].to_numpy()[answered]).sum().to_dict()
    n_rows = len(df)
    # H2O standardises with weighted moments when there are weights and no offset (§2.3)
    weighted = weights if weights is not None and OFFSET not in df.columns else None
    if weighted is not None:
        out["wnum"] = {}
    else:  # exact integer moments for narrow integer columns, without a float64 copy (pixels, counts)
        dtypes = dict(zip(df.columns, df.dtypes))  # one pass: df[c] builds a Series per column
        narrow = [c for c in numeric if _is_narrow_int(dtypes[c])]
        out["num"].update(_narrow_int_moments(df, narrow))
        numeric = [c for c in numeric if c not in out["num"]]
    for cols, v, may_nan in numeric_chunks(df, numeric):
        nan = np.isnan(v) if may_nan else None
        if weighted is not None:
            for c, moments in zip(cols, zip(*_weighted_moments(v, nan, weighted))):
                out["wnum"][c] = tuple(float(x) for x in moments)
        n, m, m2, lo, hi = _moments(v, nan, n_rows)
        for i, c in enumerate(cols):
            out["num"][c] = ((int(n[i]), float(m[i]), float(m2[i]), float(lo[i]), float(hi[i]), n_rows - int(n[i]))
                             if n[i] else (0, 0.0, 0.0, math.inf, -math.inf, n_rows))
    for c in categorical:
        out["cat"][c] = (level_counts(df[c]), int(df[c].isna().sum()))
    if level_response:
        out["cat_y"] = {c: _level_response(df[c], df[RESPONSE], response_kind) for c in categorical}
    if response_kind == "autoencoder":
        return out
    y = df[RESPONSE]
    if response_kind == "regression":
        v = y.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(v).any():
            raise DataError("the response holds infinite values; a regression target must be finite (NA rows "
                            "are skipped)")
        ok = ~np.isnan(v)
        n = int(ok.sum())
        m = float(v[ok].mean()) if n else 0.0
        out["y"] = (n, m, float(((v[ok] - m) ** 2).sum()) if n else 0.0,
                    float(v[ok].min()) if n else math.inf, float(v[ok].max()) if n else -math.inf, len(v) - n)
        if weighted is not None:
            out["wy_moments"] = tuple(float(x[0]) for x in _weighted_moments(v[:, None], ~ok[:, None], weighted))
    else:
        counts = y.dropna().value_counts()
        out["y"] = counts[counts > 0].to_dict()  # declared-but-unused categories are not classes
    return out


def _is_narrow_int(dtype) -> bool:
    """A numpy integer of at most 16 bits: its squares sum exactly in int64 over 2**31 rows."""
    return isinstance(dtype, np.dtype) and dtype.kind in "iu" and dtype.itemsize <= 2


def _narrow_int_moments(df: pd.DataFrame, columns: list, size: int = NUMERIC_CHUNK) -> dict:
    """partition_stats' (n, mean, M2, min, max, na) of narrow integer columns (no NA), from exact
    integer sums: M2 = (n * sum(x^2) - sum(x)^2) / n in Python integers."""
    out = {}
    n = len(df)
    if not n:  # no rows: the float64 path states the empty moments
        return out
    for start in range(0, len(columns), size):
        cols = columns[start:start + size]
        block = df[cols].to_numpy()
        sums = block.sum(axis=0, dtype=np.int64).tolist()
        wide = np.int32 if block.dtype.itemsize == 1 else np.int64  # a 16-bit square needs 32 unsigned bits
        squares = np.square(block, dtype=wide).sum(axis=0, dtype=np.int64).tolist()
        lows, highs = block.min(axis=0).tolist(), block.max(axis=0).tolist()
        for c, s1, s2, lo, hi in zip(cols, sums, squares, lows, highs):
            out[c] = (n, s1 / n, (n * s2 - s1 * s1) / n, float(lo), float(hi), 0)
    return out


def _moments(v: np.ndarray, nan, n_rows: int) -> tuple:
    """(non-NA rows, mean, M2, min, max) of each column of a numeric chunk (``v`` is overwritten)."""
    k = v.shape[1]
    if n_rows == 0:
        return np.zeros(k, dtype=np.int64), np.zeros(k), np.zeros(k), np.full(k, math.inf), np.full(k, -math.inf)
    if nan is not None and nan.any():
        n = n_rows - nan.sum(axis=0)
        m = np.where(nan, 0.0, v).sum(axis=0) / np.maximum(n, 1)
        m2 = (np.where(nan, 0.0, v - m) ** 2).sum(axis=0)
        return n, m, m2, np.where(nan, math.inf, v).min(axis=0), np.where(nan, -math.inf, v).max(axis=0)
    m = v.mean(axis=0)
    lo, hi = v.min(axis=0), v.max(axis=0)
    v -= m  # in place: the chunk buffer is ours until the next chunk
    np.square(v, out=v)
    return np.full(k, n_rows, dtype=np.int64), m, v.sum(axis=0), lo, hi


def _weighted_moments(v: np.ndarray, nan, w: np.ndarray) -> tuple:
    """(rows with a value and weight > 0, total weight, weighted mean, weighted M2) per column."""
    wm = np.broadcast_to(w[:, None], v.shape) if nan is None else np.where(nan, 0.0, w[:, None])
    x = v if nan is None else np.where(nan, 0.0, v)
    total = wm.sum(axis=0)
    mean = (wm * x).sum(axis=0) / np.where(total > 0, total, 1.0)
    return (wm > 0).sum(axis=0), total, mean, (wm * (x - mean) ** 2).sum(axis=0)


def _merge_weighted(a: tuple, b: tuple) -> tuple:
    """Two (rows, weight, mean, M2) moments as one (Chan et al. with weights for counts)."""
    total = a[1] + b[1]
    if total <= 0:
        return (a[0] + b[0], total, 0.0, 0.0)
    d = b[2] - a[2]
    return (a[0] + b[0], total, a[2] + d * b[1] / total, a[3] + b[3] + d * d * a[1] * b[1] / total)


def weighted_sigma(moments: tuple) -> float:
    """H2O's weighted standard deviation: sqrt(m / (m - 1) * M2 / W), m the rows with a weight."""
    rows, total, _, m2 = moments
    return math.sqrt(rows / (rows - 1) * m2 / total) if rows > 1 and total > 0 else 0.0


def _level_response(s: pd.Series, y: pd.Series, response_kind: str) -> dict:
    """{level: (rows, response sum)} (regression) or {(level, class): rows} of rows with a level and
    a response: the mergeable sums behind each level's mean response."""
    frame = pd.DataFrame({"level": level_strings(s).to_numpy(dtype=object), "y": y.to_numpy()}).dropna()
    if response_kind == "regression":
        g = frame.astype({"y": np.float64}).groupby("level")["y"].agg(["count", "sum"])
        return {lv: (int(n), float(t)) for lv, n, t in zip(g.index, g["count"], g["sum"])}
    return {k: int(v) for k, v in frame.groupby(["level", "y"]).size().items()}


def _merge_level_response(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        if k in out:
            out[k] = (out[k][0] + v[0], out[k][1] + v[1]) if isinstance(v, tuple) else out[k] + v
        else:
            out[k] = v
    return out


def check_row_roles(df: pd.DataFrame, weights_name=None, offset_name=None) -> np.ndarray | None:
    """Refuse negative, NaN or infinite observation weights and NaN or infinite offsets, naming the
    column; returns the weights (float64) when the frame has them."""
    if OFFSET in df.columns:
        o = df[OFFSET].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(o)
        if bad.any():
            raise DataError(f"offset_column {offset_name or 'offset'!r} holds {int(bad.sum())} NA or infinite "
                            "value(s); every row needs a finite offset")
    if WEIGHT not in df.columns:
        return None
    w = df[WEIGHT].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise DataError(f"weights {weights_name or 'sample_weight'!r} hold {int(bad.sum())} negative, NA or "
                        f"infinite value(s) (first: {w[bad][0]}); observation weights must be finite and >= 0")
    return w


def merge_stats(a: dict, b: dict) -> dict:
    """Combine two partition_stats results (Chan et al.'s parallel variance)."""
    out = {"rows": a["rows"] + b["rows"], "num": {}, "cat": {}}
    if "w" in a:
        out["w"] = (a["w"][0] + b["w"][0], a["w"][1] + b["w"][1])
    if "wnum" in a:
        out["wnum"] = {c: _merge_weighted(a["wnum"][c], b["wnum"][c]) for c in a["wnum"]}
    if "wy_moments" in a:
        out["wy_moments"] = _merge_weighted(a["wy_moments"], b["wy_moments"])
    if "cat_y" in a:
        out["cat_y"] = {c: _merge_level_response(a["cat_y"][c], b["cat_y"][c]) for c in a["cat_y"]}
    if "wy" in a:
        out["wy"] = {k: a["wy"].get(k, 0.0) + b["wy"].get(k, 0.0) for k in {*a["wy"], *b["wy"]}}
    for c in a["num"]:
        out["num"][c] = _merge_moments(a["num"][c], b["num"][c])
    for c in a["cat"]:
        counts = dict(a["cat"][c][0])
        for k, v in b["cat"][c][0].items():
            counts[k] = counts.get(k, 0) + v
        out["cat"][c] = (counts, a["cat"][c][1] + b["cat"][c][1])
    if isinstance(a.get("y"), dict):
        ys = dict(a["y"])
        for k, v in b["y"].items():
            ys[k] = ys.get(k, 0) + v
        out["y"] = ys
    elif "y" in a:  # (an autoencoder's frame has no response)
        out["y"] = _merge_moments(a["y"], b["y"])
    return out


def _merge_moments(a, b):
    na, ma, m2a, loa, hia, nanA = a
    nb, mb, m2b, lob, hib, nanB = b
    n = na + nb
    if n == 0:
        return (0, 0.0, 0.0, min(loa, lob), max(hia, hib), nanA + nanB)
    d = mb - ma
    m = ma + d * nb / n
    m2 = m2a + m2b + d * d * na * nb / n
    return (n, m, m2, min(loa, lob), max(hia, hib), nanA + nanB)


def tree_merge(parts: list, merge, split_every: int = 8, what: str = "merge"):
    """Pairwise-style tree of delayed merges (keeps the graph shallow for many partitions); the
    tasks are named ``dask_dl-<what>`` on the dashboard."""
    import dask
    from ..task_names import task_key
    level = list(parts)
    while len(level) > 1:
        level = [dask.delayed(_merge_many)(level[i:i + split_every], merge,
                                           dask_key_name=task_key(what, [p.key for p in level[i:i + split_every]]))
                 for i in range(0, len(level), split_every)]
    return level[0]


def _merge_many(items, merge):
    acc = items[0]
    for it in items[1:]:
        acc = merge(acc, it)
    return acc


# ------------------------------------------------------------------------------- building
def build_data_info(stats: dict, feature_names: list, roles: dict, params: dict, response_kind: str,
                    response_name: str, distribution: str) -> DataInfo:
    """Turn merged statistics into a DataInfo, applying H2O's column rules."""
    n_total = stats["rows"]
    if n_total == 0:
        raise DataError("the training data has no rows")
    autoencoder = response_kind == "autoencoder"
    if not autoencoder:
        _check_response_rows(stats["y"], response_name)
    columns, ignored = [], []
    for name in feature_names:
        column, why = _column_info(name, roles[name], stats, params["ignore_const_cols"])
        if column is None:
            ignored.append((name, why))
        else:
            columns.append(column)
    _encode_categoricals(columns, stats, params, response_kind)
    if not columns:
        raise DataError("no usable input column: every column is constant or entirely NA "
                        f"(ignored: {[n for n, _ in ignored]})")
    info = DataInfo(feature_names=list(feature_names), columns=_input_order(columns), ignored=ignored,
                    standardize=bool(params["standardize"]),
                    use_all_factor_levels=autoencoder or bool(params["use_all_factor_levels"]),  # H2O: forced for AEs
                    skip_missing=params["missing_values_handling"] == "Skip", response_name=response_name,
                    response_kind=response_kind, n_rows_total=n_total, sparse=bool(params.get("sparse", False)))
    _set_hashing(info, params, stats)
    if autoencoder:
        info.n_rows = n_total
    elif response_kind == "classification":
        _set_classes(info, stats["y"], response_name)
    else:
        _set_numeric_response(info, stats["y"], response_name, distribution, bool(params["standardize"]))
    if "w" in stats:
        _set_weights(info, stats["w"], params)
        _weighted_standardisation(info, stats)
    if params.get("balance_classes") and response_kind == "classification":
        _set_balance(info, stats.get("wy") or stats["y"], params)
    info.offset_column = params.get("offset_column")
    _check_first_layer(info, params)
    return info


def _set_balance(info: DataInfo, counts: dict, params: dict) -> None:
    """H2O's class balancing factors (§12.2): ``class_sampling_factors``, or each class up to the
    largest one's (weighted) count; scaled down so the balanced rows stay within
    max_after_balance_size x the training rows."""
    n = np.array([float(counts.get(c, counts.get(str(c), 0.0))) for c in info.classes])
    given = params.get("class_sampling_factors")
    if given is not None and len(given) != len(info.classes):
        raise DataError(f"class_sampling_factors has {len(given)} values; response {info.response_name!r} has "
                        f"{len(info.classes)} classes {info.classes[:10]}")
    r = np.asarray(given, float) if given is not None else np.where(n > 0, n.max() / np.where(n > 0, n, 1.0), 0.0)
    cap = float(params.get("max_after_balance_size", 5.0)) * n.sum()
    if (r * n).sum() > cap:
        r *= cap / (r * n).sum()
    info.class_factors = r.tolist()
    info.class_priors = (n / n.sum()).tolist()
    info.class_balanced = (r * n / (r * n).sum()).tolist()


def _weighted_standardisation(info: DataInfo, stats: dict) -> None:
    """With weights and no offset, H2O standardises numeric columns (and an identity-link response)
    with weighted means and standard deviations (§2.3)."""
    for col in info.columns:
        if col.kind == "numeric" and col.name in stats.get("wnum", {}):
            col.mean, col.sigma = stats["wnum"][col.name][2], weighted_sigma(stats["wnum"][col.name])
    if "wy_moments" in stats and info.standardize_response:
        sigma = weighted_sigma(stats["wy_moments"])
        info.response_mean, info.response_sigma = stats["wy_moments"][2], sigma if sigma > 0 else 1.0


def _set_weights(info: DataInfo, weights: tuple, params: dict) -> None:
    """Rows of weight 0 do not train: the epoch counts the others."""
    n_zero, total = weights
    name = params.get("weights_column") or "sample_weight"
    if total <= 0:
        raise DataError(f"weights {name!r} are 0 in every row with a response: nothing would train")
    info.weights_column = params.get("weights_column")
    info.n_rows -= n_zero
    info.zero_weight_rows = int(n_zero)


def _check_response_rows(y_stats, response_name: str) -> None:
    """Training needs two rows with a response (NA rows are skipped)."""
    n = sum(y_stats.values()) if isinstance(y_stats, dict) else y_stats[0]
    if n == 0:
        raise DataError(f"response {response_name!r} is entirely NA")
    if n == 1:
        raise DataError(f"response {response_name!r} has a value in only 1 row; training needs at least 2 rows")


# A categorical column is refused as an identifier when it has more than MAX_ID_LEVELS levels AND
# more than ID_LEVEL_FRACTION of its values are distinct: one-hot inputs that each see one or two
# rows teach nothing and cost a wide first layer and dense encoded rows (8,675 inputs for a
# 10,000-row ID column).
MAX_ID_LEVELS = 1000
ID_LEVEL_FRACTION = 0.5
# The first weight matrix with its two optimizer slots, per model copy (every worker holds one).
MAX_FIRST_LAYER_BYTES = 1 << 30
_CARDINALITY_HINT = ("drop the column, convert it to numbers if its values are ordered, merge rare levels "
                     "before training, or choose categorical_encoding='EnumLimited' (or 'Binary', 'LabelEncoder', "
                     "'SortByResponse', 'Eigen') or a smaller max_categorical_features (hashing)")


def check_cardinality(name, counts: dict) -> None:
    """Refuse a categorical column that looks like an identifier (see MAX_ID_LEVELS), by name."""
    n_levels, n_values = len(counts), sum(counts.values())
    if n_levels > MAX_ID_LEVELS and n_levels > ID_LEVEL_FRACTION * n_values:
        raise DataError(f"categorical column {name!r} has {n_levels:,} distinct values in {n_values:,} rows: it "
                        f"looks like an identifier, and one-hot encoding would give it {n_levels + 1:,} inputs "
                        f"(dask_dl refuses a categorical column with more than {MAX_ID_LEVELS:,} levels when "
                        f"more than {ID_LEVEL_FRACTION:.0%} of its values are distinct); {_CARDINALITY_HINT}")


def _check_first_layer(info: DataInfo, params: dict) -> None:
    """Refuse inputs so wide that the first weight matrix (x3 with the optimizer state) would pass
    MAX_FIRST_LAYER_BYTES, naming the widest categorical columns."""
    hidden = list(params.get("hidden") or [])
    units = int(hidden[0]) if hidden else max(1, len(info.classes))
    units *= 2 if hidden and str(params.get("activation", "")).startswith("Maxout") else 1
    need = 3 * 4 * info.n_inputs * units
    if need <= MAX_FIRST_LAYER_BYTES:
        return
    cats = sorted((c for c in info.columns if c.kind == "categorical"), key=lambda c: -len(c.levels))
    widest = ", ".join(f"{c.name!r} ({len(c.levels):,} levels)" for c in cats[:3]) or "none"
    raise DataError(f"the input layer would have {info.n_inputs:,} inputs: its weights and optimizer state "
                    f"for {units} first-layer units take {need / 2**30:.2f} GiB per model copy, more than "
                    f"dask_dl's {MAX_FIRST_LAYER_BYTES / 2**30:.0f} GiB limit (widest categorical columns: "
                    f"{widest}); {_CARDINALITY_HINT}, or use a smaller first hidden layer")


IN_MEMORY_SLICE_BYTES = 64 << 20  # the float64 chunk buffer of one row slice in in_memory_data_info


def row_slices(frame: pd.DataFrame, width: int):
    """``frame`` in row slices whose float64 copy of ``width`` columns stays near IN_MEMORY_SLICE_BYTES."""
    step = max(1024, IN_MEMORY_SLICE_BYTES // (8 * max(1, width)))
    for start in range(0, max(len(frame), 1), step):
        yield frame.iloc[start:start + step]


def in_memory_data_info(frame, roles: dict, params: dict, response_kind: str, response_name: str,
                        distribution: str, parts: list | None = None) -> DataInfo | None:
    """The statistics pass on the client for a pandas frame, or for ``parts``, the pandas partitions
    a dask frame is made of (``cluster.frames.client_held_parts``); None for other dask frames. Row
    slices are merged as the cluster merges partitions: every error the pass can raise (an infinite
    value, an identifier-like or badly typed categorical column, an entirely-NA column, the
    response's domain) comes before any cluster work; the training job then uses this DataInfo."""
    if parts is None:
        if not isinstance(frame, pd.DataFrame):
            return None
        parts = [frame]
    features = feature_columns(frame)
    numeric = [c for c in features if roles[c] == "numeric"]
    categorical = [c for c in features if roles[c] == "categorical"]
    stats = None
    names = (params.get("weights_column"), params.get("offset_column"))
    by_response = params.get("categorical_encoding") == "SortByResponse"
    for part in (piece for whole in parts for piece in row_slices(whole, min(len(numeric), NUMERIC_CHUNK))):
        one = partition_stats(part, numeric, categorical, response_kind, names, by_response)
        stats = one if stats is None else merge_stats(stats, one)
    return build_data_info(stats, features, roles, params, response_kind, response_name, distribution)


def _column_info(name, role: str, stats: dict, ignore_const: bool):
    """(ColumnInfo, None) of a usable column, or (None, why it is ignored); an all-NA column is an
    error unless ignore_const_cols."""
    if role == "numeric":
        n, mean, m2, lo, hi, na = stats["num"][name]
        empty, constant = n == 0, lo == hi
    else:
        counts, na = stats["cat"][name]
        levels = sorted(counts)  # H2O's domain order: lexicographic
        empty, constant = not levels, len(levels) == 1
    if empty:
        if ignore_const:
            return None, "all values are NA"
        raise DataError(f"column {name!r} is entirely NA; drop it or set ignore_const_cols=True")
    if ignore_const and constant:
        return None, "constant"
    if role == "numeric":
        sigma = math.sqrt(m2 / (n - 1)) if n > 1 else 0.0
        return ColumnInfo(name, "numeric", mean=mean, sigma=sigma, min=lo, max=hi, na_count=na), None
    return ColumnInfo(name, "categorical", levels=levels, na_count=na), None


def _input_order(columns: list) -> list:
    """H2O's input layout: one-hot categoricals first, by decreasing cardinality (its non-stable swap
    sort), then the columns that are numbers (numeric, and categoricals H2O's frame encoder turns
    into numbers: Binary, LabelEncoder...) in frame order."""
    cats = [c for c in columns if c.one_hot]
    for i in range(len(cats)):
        for j in range(i + 1, len(cats)):
            if len(cats[i].levels) < len(cats[j].levels):
                cats[i], cats[j] = cats[j], cats[i]
    return cats + [c for c in columns if not c.one_hot]


def _encode_categoricals(columns: list, stats: dict, params: dict, response_kind: str) -> None:
    """Each categorical column's categorical_encoding: its kept levels and, for the encodings that
    make a number of a level, each level's number and their mean and standard deviation."""
    encoding = params.get("categorical_encoding", "AUTO")
    for col in (c for c in columns if c.kind == "categorical"):
        counts = stats["cat"][col.name][0]
        col.encoding = "OneHotInternal" if encoding == "AUTO" else encoding
        col.levels = encodings.kept_levels(col.encoding, counts)
        if col.encoding in encodings.VALUED:
            means = _level_means(stats["cat_y"][col.name], response_kind) if col.encoding == "SortByResponse" else None
            values = encodings.level_values(col.encoding, col.levels, counts, means)
            col.values = values.tolist()
            col.mean, col.sigma = encodings.value_moments(values, np.array([counts[lv] for lv in col.levels], float))


def _level_means(sums: dict, response_kind: str) -> dict:
    """Each level's mean response (classifiers: the mean class index, classes in domain order)."""
    if response_kind == "regression":
        return {lv: t / n for lv, (n, t) in sums.items() if n}
    order = {c: i for i, c in enumerate(_sorted_classes(list({cls for _, cls in sums})))}
    rows, total = {}, {}
    for (lv, cls), n in sums.items():
        rows[lv] = rows.get(lv, 0) + n
        total[lv] = total.get(lv, 0.0) + n * order[_jsonable(cls)]
    return {lv: total[lv] / rows[lv] for lv in rows}


def _set_hashing(info: DataInfo, params: dict, stats: dict) -> None:
    """max_categorical_features: hash the one-hot inputs when there are more of them; otherwise a
    one-hot column that looks like an identifier is refused (``check_cardinality``)."""
    limit = int(params.get("max_categorical_features", NO_HASHING))
    one_hot = [c for c in info.columns if c.one_hot]
    if limit < sum(info.one_hot_width(c) for c in one_hot):
        info.hash_slots, info.hash_seed = limit, int(params.get("seed", 0)) & 0xFFFFFFFF
        return
    for c in one_hot:
        if c.encoding != "EnumLimited":
            check_cardinality(c.name, stats["cat"][c.name][0])


def _set_classes(info: DataInfo, counts: dict, response_name: str) -> None:
    if not counts:
        raise DataError(f"response {response_name!r} is entirely NA")
    if any(isinstance(c, (float, np.floating)) and math.isinf(c) for c in counts):
        raise DataError(f"response {response_name!r} holds infinite values; class labels must be finite "
                        "(NA rows are skipped)")
    classes = _sorted_classes(list(counts))
    if len(classes) < 2:
        raise DataError(f"response {response_name!r} has a single class {classes[0]!r}; a classifier "
                        "needs at least 2")
    info.classes = classes
    info.n_rows = int(sum(counts.values()))


def _set_numeric_response(info: DataInfo, moments: tuple, response_name: str, distribution: str,
                          standardize: bool) -> None:
    n, mean, m2, lo, hi, na = moments
    if n == 0:
        raise DataError(f"response {response_name!r} is entirely NA")
    if distribution in ("poisson", "tweedie") and lo < 0:
        raise DataError(f"response {response_name!r} has negative values ({lo}); "
                        f"distribution={distribution!r} needs y >= 0")
    if distribution == "gamma" and lo <= 0:
        raise DataError(f"response {response_name!r} has values <= 0 ({lo}); distribution='gamma' needs y > 0")
    sigma = math.sqrt(m2 / (n - 1)) if n > 1 else 0.0
    info.response_mean = mean
    info.response_sigma = sigma if sigma > 0 else 1.0
    info.standardize_response = standardize and distribution not in LOG_LINK_DISTRIBUTIONS
    info.n_rows = int(n)


def _sorted_classes(values: list) -> list:
    vals = [_jsonable(v) for v in values]
    try:
        return sorted(vals)
    except TypeError:
        return sorted(vals, key=str)
