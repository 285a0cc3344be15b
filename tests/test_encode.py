"""dask_dl.data.schema / dask_dl.data.encode against pandas and the spec (§2 of
/work/shared/docs/h2o-deeplearning-semantics.md, plus the project's NA policy: NAs are encoded the same way in
training and scoring; numeric NA -> training mean; categorical NA and unseen levels -> the missing slot in both
use_all_factor_levels modes; K-1 mode: first level has no slot, missing bucket is the last slot of the block)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from dask_dl.data.encode import encode_features, encode_response, encode_training_block, sample_block
from dask_dl.data.schema import (
    RESPONSE,
    DataError,
    DataInfo,
    build_data_info,
    column_role,
    level_codes,
    level_counts,
    merge_stats,
    partition_stats,
)
from dask_dl.params import DEFAULTS

HSET = settings(max_examples=60, deadline=None)


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #

def roles_of(df):
    return {c: column_role(c, df.dtypes[c]) for c in df.columns if c != RESPONSE}


def stats_of(df, kind="regression", split=None):
    """partition_stats on two halves, merged."""
    roles = roles_of(df)
    num = [c for c, r in roles.items() if r == "numeric"]
    cat = [c for c, r in roles.items() if r == "categorical"]
    k = len(df) // 2 if split is None else split
    a = partition_stats(df.iloc[:k], num, cat, kind)
    b = partition_stats(df.iloc[k:], num, cat, kind)
    return merge_stats(a, b)


def info_of(df, kind="regression", distribution="gaussian", **params):
    p = dict(DEFAULTS)
    p.update(params)
    feats = [c for c in df.columns if c != RESPONSE]
    return build_data_info(stats_of(df, kind), feats, roles_of(df), p, kind, "target", distribution)


def sd(x):
    return float(pd.Series(x, dtype="float64").std(ddof=1))


@pytest.fixture
def frame():
    return pd.DataFrame({
        "x": [1.0, 2.5, np.nan, 4.0, -3.0, 10.0, np.nan, 0.5],
        "color": ["red", "green", None, "blue", "red", "red", "green", "blue"],
        "n": np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.int64),
        "flag": [True, False, True, True, False, False, True, False],
        "size": pd.Categorical(["S", "M", "L", "XL", None, "S", "M", "M"]),
        "word": pd.Series(["p", "q", "p", None, "q", "p", "q", "q"], dtype="string"),
        RESPONSE: [1.5, 2.0, np.nan, 3.5, 0.0, -1.0, 2.25, 8.0],
    })


# --------------------------------------------------------------------------- #
# statistics
# --------------------------------------------------------------------------- #

def test_stats_match_pandas(frame):
    s = stats_of(frame)
    assert s["rows"] == len(frame)
    for c in ("x", "n", "flag"):
        v = frame[c].astype("float64")
        n, mean, m2, lo, hi, na = s["num"][c]
        assert n == v.notna().sum()
        assert mean == pytest.approx(v.mean())
        assert math.sqrt(m2 / (n - 1)) == pytest.approx(v.std(ddof=1))
        assert (lo, hi) == (v.min(), v.max())
        assert na == v.isna().sum()
    for c in ("color", "size", "word"):
        counts, na = s["cat"][c]
        want = frame[c].dropna().astype(str).value_counts().to_dict()
        assert counts == want
        assert na == frame[c].isna().sum()
    n, mean, m2, lo, hi, na = s["y"]
    y = frame[RESPONSE]
    assert (n, na) == (y.notna().sum(), y.isna().sum())
    assert mean == pytest.approx(y.mean()) and math.sqrt(m2 / (n - 1)) == pytest.approx(y.std(ddof=1))
    assert (lo, hi) == (y.min(), y.max())


def test_classification_response_counts(frame):
    df = frame.assign(**{RESPONSE: ["a", "b", None, "a", "c", "a", "b", None]})
    s = stats_of(df, "classification")
    assert s["y"] == {"a": 3, "b": 2, "c": 1}


def test_merge_with_empty_partition(frame):
    whole = stats_of(frame, split=len(frame))
    for split in (0, len(frame)):
        s = stats_of(frame, split=split)
        for c in s["num"]:
            assert s["num"][c] == pytest.approx(whole["num"][c])
        assert s["cat"] == whole["cat"]
        assert s["y"] == pytest.approx(whole["y"])


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
maybe_na = st.one_of(finite, st.just(float("nan")))


@HSET
@given(values=st.lists(maybe_na, min_size=1, max_size=40),
       levels=st.data(),
       cuts=st.lists(st.integers(0, 40), max_size=4))
def test_merging_partitions_equals_one_pass(values, levels, cuts):
    n = len(values)
    cats = levels.draw(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])), min_size=n, max_size=n))
    ys = levels.draw(st.lists(maybe_na, min_size=n, max_size=n))
    df = pd.DataFrame({"x": values, "c": pd.Series(cats, dtype=object), RESPONSE: ys})
    bounds = sorted({0, n, *[min(c, n) for c in cuts]})
    parts = [partition_stats(df.iloc[a:b], ["x"], ["c"], "regression") for a, b in zip(bounds, bounds[1:])]
    merged = parts[0]
    for p in parts[1:]:
        merged = merge_stats(merged, p)
    whole = partition_stats(df, ["x"], ["c"], "regression")
    assert merged["rows"] == whole["rows"] == n
    for key, got, want in (("x", merged["num"]["x"], whole["num"]["x"]), ("y", merged["y"], whole["y"])):
        gn, gm, gm2, glo, ghi, gna = got
        wn, wm, wm2, wlo, whi, wna = want
        assert (gn, gna, glo, ghi) == (wn, wna, wlo, whi), key
        scale = max(1.0, float(np.nanmax(np.abs(np.asarray(values if key == "x" else ys, dtype=float)))) if wn else 1.0)
        assert gm == pytest.approx(wm, abs=1e-9 * scale), key
        assert gm2 == pytest.approx(wm2, rel=1e-7, abs=1e-9 * scale * scale * max(wn, 1)), key
        # against pandas directly
        v = pd.Series(values if key == "x" else ys, dtype="float64")
        assert gn == v.notna().sum() and gna == v.isna().sum()
        if gn:
            assert gm == pytest.approx(v.mean(), abs=1e-9 * scale)
            assert (glo, ghi) == (v.min(), v.max())
        if gn > 1:
            assert math.sqrt(gm2 / (gn - 1)) == pytest.approx(v.std(ddof=1), rel=1e-6, abs=1e-6 * scale)
    assert merged["cat"] == whole["cat"]
    counts, na = merged["cat"]["c"]
    assert counts == pd.Series(cats, dtype=object).dropna().value_counts().to_dict()
    assert na == sum(c is None for c in cats)


@HSET
@given(ys=st.lists(st.one_of(st.none(), st.sampled_from(["x", "y", "z"])), min_size=1, max_size=30),
       cut=st.integers(0, 30))
def test_merging_class_counts_equals_one_pass(ys, cut):
    df = pd.DataFrame({"f": np.arange(len(ys), dtype=float), RESPONSE: pd.Series(ys, dtype=object)})
    k = min(cut, len(ys))
    a = partition_stats(df.iloc[:k], ["f"], [], "classification")
    b = partition_stats(df.iloc[k:], ["f"], [], "classification")
    assert merge_stats(a, b)["y"] == partition_stats(df, ["f"], [], "classification")["y"]


# --------------------------------------------------------------------------- #
# column roles
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("series,role", [
    (pd.Series([1.0, 2.0]), "numeric"),
    (pd.Series([1, 2], dtype=np.int32), "numeric"),
    (pd.Series([1, None], dtype="Int64"), "numeric"),
    (pd.Series([1.5, None], dtype="Float64"), "numeric"),
    (pd.Series([True, False]), "numeric"),
    (pd.Series([True, None], dtype="boolean"), "numeric"),
    (pd.Series(["a", "b"], dtype=object), "categorical"),
    (pd.Series(["a", "b"], dtype="string"), "categorical"),
    (pd.Series(["a", "b"]), "categorical"),
    (pd.Series(pd.Categorical(["a", "b"])), "categorical"),
    (pd.Series(pd.Categorical([1, 2])), "categorical"),
])
def test_column_role(series, role):
    assert column_role("col", series.dtype) == role


@pytest.mark.parametrize("series", [
    pd.Series(pd.to_datetime(["2020-01-01", "2021-06-01"])),
    pd.Series(pd.to_datetime(["2020-01-01"]).tz_localize("UTC")),
    pd.Series(pd.to_timedelta([1, 2], unit="s")),
    pd.Series(pd.period_range("2020-01", periods=2, freq="M")),
])
def test_column_role_refuses_datetimes(series):
    with pytest.raises(DataError, match="'when'"):
        column_role("when", series.dtype)


def test_column_role_refuses_complex():
    with pytest.raises(DataError, match="'z'.*complex"):
        column_role("z", pd.Series([1 + 2j]).dtype)


# --------------------------------------------------------------------------- #
# layout
# --------------------------------------------------------------------------- #

def layout_frame():
    return pd.DataFrame({
        "x1": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        "c2": ["u", "v", "u", "v", "u", "v"],
        "x2": [5.0, 3.0, 1.0, 2.0, 2.0, 9.0],
        "c4": ["a", "b", "c", "d", "a", "b"],
        "c3": ["k", "j", "i", "k", "j", "i"],
        RESPONSE: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    })


def test_layout_use_all_levels():
    info = info_of(layout_frame())
    assert [c.name for c in info.columns] == ["c4", "c3", "c2", "x1", "x2"]
    assert [c.kind for c in info.columns] == ["categorical"] * 3 + ["numeric"] * 2
    assert info.columns[0].levels == ["a", "b", "c", "d"]
    assert info.columns[1].levels == ["i", "j", "k"]
    assert [info.block_width(c) for c in info.columns] == [5, 4, 3, 1, 1]
    assert info.offsets() == [0, 5, 9, 12, 13]
    assert info.n_inputs == 14
    assert info.coef_names() == [
        "c4.a", "c4.b", "c4.c", "c4.d", "c4.missing(NA)",
        "c3.i", "c3.j", "c3.k", "c3.missing(NA)",
        "c2.u", "c2.v", "c2.missing(NA)",
        "x1", "x2"]
    assert info.feature_names == ["x1", "c2", "x2", "c4", "c3"]
    assert info.ignored == []


def test_layout_k_minus_one():
    info = info_of(layout_frame(), use_all_factor_levels=False)
    assert [info.block_width(c) for c in info.columns] == [4, 3, 2, 1, 1]
    assert info.offsets() == [0, 4, 7, 9, 10]
    assert info.n_inputs == 11
    assert info.coef_names() == [
        "c4.b", "c4.c", "c4.d", "c4.missing(NA)",
        "c3.j", "c3.k", "c3.missing(NA)",
        "c2.v", "c2.missing(NA)",
        "x1", "x2"]
    assert len(info.coef_names()) == info.n_inputs


def test_cardinality_sort_is_h2os_swap_sort():
    # frame order a(2), b(2), c(3): the swap sort gives c, b, a (ties do NOT keep frame order)
    df = pd.DataFrame({"a": list("xyxyxy"), "b": list("pqpqpq"), "c": list("rstrst"), RESPONSE: np.arange(6.0)})
    info = info_of(df)
    assert [c.name for c in info.columns] == ["c", "b", "a"]
    # 2, 4, 3 -> 4, 3, 2
    df = pd.DataFrame({"a": list("xyxyxy"), "b": list("pqrspq"), "c": list("rstrst"), RESPONSE: np.arange(6.0)})
    assert [c.name for c in info_of(df).columns] == ["b", "c", "a"]


def test_numerics_keep_frame_order():
    df = pd.DataFrame({"z": [1.0, 2, 3], "a": [3.0, 1, 2], "m": [0.0, 0, 1], RESPONSE: [1.0, 2, 3]})
    assert [c.name for c in info_of(df).columns] == ["z", "a", "m"]


def test_levels_sorted_and_unused_categories_dropped():
    s = pd.Series(pd.Categorical(["b", "a", "b", None], categories=["c", "b", "a", "zz"]))
    df = pd.DataFrame({"k": s, RESPONSE: [1.0, 2.0, 3.0, 4.0]})
    info = info_of(df)
    assert info.columns[0].levels == ["a", "b"]
    assert info.columns[0].na_count == 1


# --------------------------------------------------------------------------- #
# one-hot encoding
# --------------------------------------------------------------------------- #

def cat_info(use_all):
    train = pd.DataFrame({"c": ["b", "a", "c", "a", None, "c"], "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                          RESPONSE: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    return info_of(train, use_all_factor_levels=use_all)


SCORE = pd.DataFrame({"c": ["a", "b", "c", None, "zzz"], "x": [1.0, 1.0, 1.0, 1.0, 1.0]})


def test_one_hot_use_all_levels():
    info = cat_info(True)
    X, has_na = encode_features(SCORE, info)
    assert X.dtype == np.float32 and X.flags["C_CONTIGUOUS"] and X.shape == (5, 5)
    block = X[:, :4]
    want = np.array([[1, 0, 0, 0],     # a
                     [0, 1, 0, 0],     # b
                     [0, 0, 1, 0],     # c
                     [0, 0, 0, 1],     # NA -> missing slot
                     [0, 0, 0, 1]],    # unseen -> missing slot
                    dtype=np.float32)
    np.testing.assert_array_equal(block, want)
    assert info.coef_names()[:4] == ["c.a", "c.b", "c.c", "c.missing(NA)"]
    np.testing.assert_array_equal(has_na, [False, False, False, True, False])


def test_one_hot_k_minus_one():
    info = cat_info(False)
    X, has_na = encode_features(SCORE, info)
    assert X.shape == (5, 4)
    block = X[:, :3]
    want = np.array([[0, 0, 0],     # a: first level has no slot
                     [1, 0, 0],     # b
                     [0, 1, 0],     # c
                     [0, 0, 1],     # NA -> last slot (missing bucket), not level c's slot
                     [0, 0, 1]],    # unseen -> missing bucket
                    dtype=np.float32)
    np.testing.assert_array_equal(block, want)
    assert info.coef_names()[:3] == ["c.b", "c.c", "c.missing(NA)"]
    np.testing.assert_array_equal(has_na, [False, False, False, True, False])


@pytest.mark.parametrize("use_all", [True, False])
def test_training_and_scoring_encode_na_identically(use_all):
    info = cat_info(use_all)
    row = pd.DataFrame({"c": [None], "x": [np.nan], RESPONSE: [1.0]})
    X_train = encode_training_block(row, info)[0]
    X_score, _ = encode_features(row.drop(columns=[RESPONSE]), info)
    np.testing.assert_array_equal(X_train, X_score)
    assert X_train[0, info.block_width(info.columns[0]) - 1] == 1.0
    assert X_train[0, -1] == 0.0


@pytest.mark.parametrize("dtype", [object, "string", "category"])
def test_one_hot_same_for_any_categorical_dtype(dtype):
    info = cat_info(True)
    df = SCORE.assign(c=SCORE["c"].astype(dtype))
    X, _ = encode_features(df, info)
    X0, _ = encode_features(SCORE, info)
    np.testing.assert_array_equal(X, X0)


def test_numeric_like_levels_match_across_dtypes():
    train = pd.DataFrame({"c": pd.Series([1, 2, 3, 1], dtype=object), "x": [1.0, 2, 3, 4], RESPONSE: [1.0, 2, 3, 4]})
    info = info_of(train)
    assert info.columns[0].levels == ["1", "2", "3"]
    score = pd.DataFrame({"c": pd.Categorical([3, 1]), "x": [0.0, 0.0]})
    X, _ = encode_features(score, info)
    np.testing.assert_array_equal(X[:, :4], [[0, 0, 1, 0], [1, 0, 0, 0]])


def test_categorical_codes_path_equals_string_path():
    # pandas categoricals are counted and encoded on their integer codes; the answers must be those of
    # the per-row string path: NA not counted, unused categories absent, categories that print alike
    # (1 and "1") merged, unseen levels -1
    cat = pd.Series(pd.Categorical([1, "1", None, "b", "b", 2.5], categories=[1, "1", "b", 2.5, "unused"]))
    plain = cat.astype(object)
    assert level_counts(cat) == level_counts(plain) == {"1": 2, "b": 2, "2.5": 1}
    levels = ["1", "2.5", "zz"]
    np.testing.assert_array_equal(level_codes(cat, levels), [0, 0, -1, -1, -1, 1])
    np.testing.assert_array_equal(level_codes(cat, levels), level_codes(plain, levels))


def test_categorical_response_encodes_like_object():
    info = DataInfo(feature_names=[], columns=[], ignored=[], standardize=True, use_all_factor_levels=True,
                    skip_missing=False, response_name="y", response_kind="classification", classes=["a", "b", "c"])
    y = pd.Series(pd.Categorical(["c", None, "a", "c"], categories=["a", "c", "b", "never"]))
    np.testing.assert_array_equal(encode_response(y, info), encode_response(y.astype(object), info))
    np.testing.assert_array_equal(encode_response(y, info), [2, np.nan, 0, 2])
    with pytest.raises(DataError, match="'zz'"):
        encode_response(pd.Series(pd.Categorical(["a", "zz"])), info)


# --------------------------------------------------------------------------- #
# numeric transform
# --------------------------------------------------------------------------- #

def test_standardize(frame):
    info = info_of(frame)
    X, has_na = encode_features(frame, info)
    names = info.coef_names()
    for c in ("x", "n", "flag"):
        v = frame[c].astype("float64")
        mu, sigma = v.mean(), v.std(ddof=1)
        col = info.columns[[ci.name for ci in info.columns].index(c)]
        assert col.mean == pytest.approx(mu) and col.sigma == pytest.approx(sigma)
        assert (col.min, col.max, col.na_count) == (v.min(), v.max(), v.isna().sum())
        got = X[:, names.index(c)]
        want = np.where(v.isna(), 0.0, (v - mu) / sigma)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(
        has_na, frame[["x", "color", "size", "word"]].isna().any(axis=1).to_numpy())


def test_no_standardize_raw_values_na_to_mean(frame):
    info = info_of(frame, standardize=False)
    X, _ = encode_features(frame, info)
    names = info.coef_names()
    v = frame["x"]
    want = v.fillna(v.mean()).to_numpy()
    np.testing.assert_allclose(X[:, names.index("x")], want, rtol=1e-6)
    np.testing.assert_array_equal(X[:, names.index("n")], frame["n"].to_numpy(dtype=np.float32))
    np.testing.assert_array_equal(X[:, names.index("flag")], frame["flag"].to_numpy(dtype=np.float32))


def test_sparse_descales_and_keeps_zeros(frame):
    """H2O's DESCALE (sparse=True): no centring, so a zero stays exactly zero; NA -> the mean, scaled."""
    info = info_of(frame, sparse=True)
    assert info.sparse
    X, _ = encode_features(frame.assign(n=[0, 3, 0, 1, 0, 2, 0, 5]), info)
    names = info.coef_names()
    for c in ("x", "n"):
        col = info.columns[[ci.name for ci in info.columns].index(c)]
        v = frame.assign(n=[0, 3, 0, 1, 0, 2, 0, 5])[c].astype("float64")
        want = np.where(v.isna(), col.mean, v) / col.sigma
        np.testing.assert_allclose(X[:, names.index(c)], want, rtol=1e-6)
    assert (X[:, names.index("n")] == 0).sum() == 4


def test_nullable_numeric_na(frame):
    info = info_of(frame)
    df = frame.assign(x=pd.array([1.0, None, None, 4.0, None, None, None, 0.5], dtype="Float64"))
    X, has_na = encode_features(df, info)
    col = info.columns[[c.name for c in info.columns].index("x")]
    xs = X[:, info.coef_names().index("x")]
    np.testing.assert_allclose(xs[[1, 2]], 0.0)
    assert xs[0] == pytest.approx((1.0 - col.mean) / col.sigma, rel=1e-6)
    assert has_na[1] and has_na[2]


def test_missing_column_named(frame):
    info = info_of(frame)
    with pytest.raises(DataError, match="'color'"):
        encode_features(frame.drop(columns=["color"]), info)


# --------------------------------------------------------------------------- #
# constant / all-NA columns
# --------------------------------------------------------------------------- #

def const_frame():
    return pd.DataFrame({
        "good": [1.0, 2.0, 3.0, 4.0],
        "const": [7.0, 7.0, np.nan, 7.0],
        "allna": [np.nan] * 4,
        "cconst": ["q", None, "q", "q"],
        "callna": pd.Series([None] * 4, dtype=object),
        "cgood": ["a", "b", "a", "b"],
        RESPONSE: [1.0, 2.0, 3.0, 5.0],
    })


def test_constant_and_all_na_ignored():
    info = info_of(const_frame())
    assert [c.name for c in info.columns] == ["cgood", "good"]
    assert dict(info.ignored) == {"const": "constant", "allna": "all values are NA",
                                  "cconst": "constant", "callna": "all values are NA"}
    X, _ = encode_features(const_frame(), info)
    assert X.shape == (4, info.n_inputs) == (4, 4)


def test_constant_kept_without_ignore_const_cols():
    df = const_frame().drop(columns=["allna", "callna"])
    info = info_of(df, ignore_const_cols=False)
    names = [c.name for c in info.columns]
    assert set(names) == {"good", "const", "cconst", "cgood"} and info.ignored == []
    col = info.columns[names.index("const")]
    assert col.sigma == 0.0 and col.mean == 7.0
    X, _ = encode_features(df, info)
    np.testing.assert_array_equal(X[:, info.coef_names().index("const")], 0.0)   # σ = 0 → mul 1, x − μ = 0
    assert info.coef_names()[:4] == ["cgood.a", "cgood.b", "cgood.missing(NA)", "cconst.q"]


@pytest.mark.parametrize("col", ["allna", "callna"])
def test_all_na_without_ignore_const_cols_is_error(col):
    df = const_frame()[["good", col, RESPONSE]]
    with pytest.raises(DataError, match=f"'{col}'"):
        info_of(df, ignore_const_cols=False)


def test_no_usable_column():
    df = const_frame()[["const", "allna", RESPONSE]]
    with pytest.raises(DataError, match="no usable input column"):
        info_of(df)


# --------------------------------------------------------------------------- #
# infinities
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_predictor_named(bad):
    df = pd.DataFrame({"ok": [1.0, 2.0, 3.0, 4.0], "wild": [1.0, bad, 2.0, 3.0], RESPONSE: [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(DataError, match="'wild'.*infinite"):
        stats_of(df)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_regression_target(bad):
    df = pd.DataFrame({"ok": [1.0, 2.0, 3.0, 4.0], RESPONSE: [1.0, 2.0, 3.0, bad]})
    with pytest.raises(DataError, match="infinite"):
        stats_of(df)
    info = info_of(df.assign(**{RESPONSE: [1.0, 2.0, 3.0, 4.0]}))
    with pytest.raises(DataError, match="'target'.*infinite"):
        encode_response(df[RESPONSE], info)


# --------------------------------------------------------------------------- #
# response
# --------------------------------------------------------------------------- #

def reg_frame(y):
    return pd.DataFrame({"x": np.arange(len(y), dtype=float), RESPONSE: y})


@pytest.mark.parametrize("dist", ["gaussian", "laplace", "quantile", "huber"])
def test_regression_response_standardised(dist):
    y = pd.Series([1.0, 4.0, np.nan, 10.0, 2.5])
    info = info_of(reg_frame(y), distribution=dist)
    assert info.standardize_response
    mu, sigma = y.mean(), y.std(ddof=1)
    assert info.response_mean == pytest.approx(mu) and info.response_sigma == pytest.approx(sigma)
    assert info.n_rows == 4 and info.n_rows_total == 5
    t = encode_response(y, info)
    assert t.dtype == np.float32
    np.testing.assert_allclose(t, (y - mu) / sigma, rtol=1e-6)
    assert np.isnan(t[2])


@pytest.mark.parametrize("dist", ["poisson", "gamma", "tweedie"])
def test_log_link_response_not_standardised(dist):
    y = pd.Series([1.0, 4.0, 3.0, 10.0])
    info = info_of(reg_frame(y), distribution=dist)
    assert not info.standardize_response
    np.testing.assert_array_equal(encode_response(y, info), y.to_numpy(np.float32))


def test_response_not_standardised_without_standardize():
    y = pd.Series([1.0, 4.0, 3.0, 10.0])
    info = info_of(reg_frame(y), standardize=False)
    assert not info.standardize_response
    np.testing.assert_array_equal(encode_response(y, info), y.to_numpy(np.float32))


def test_constant_regression_target_sigma_one():
    info = info_of(reg_frame([2.0, 2.0, 2.0]))
    assert info.response_sigma == 1.0
    np.testing.assert_array_equal(encode_response(pd.Series([2.0, 3.0]), info), [0.0, 1.0])


@pytest.mark.parametrize("dist,y", [("poisson", [1.0, -0.5, 2.0]), ("tweedie", [0.0, -1.0, 2.0]),
                                    ("gamma", [1.0, 0.0, 2.0]), ("gamma", [1.0, -2.0, 2.0])])
def test_log_link_domain_errors(dist, y):
    with pytest.raises(DataError, match=f"'target'.*distribution={dist!r}|'target'.*{dist}"):
        info_of(reg_frame(y), distribution=dist)


def test_poisson_accepts_zero():
    info = info_of(reg_frame([0.0, 1.0, 3.0]), distribution="poisson")
    assert info.n_rows == 3


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_entirely_na_response(kind):
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], RESPONSE: pd.Series([None, None, None], dtype=object if
                                                                kind == "classification" else float)})
    with pytest.raises(DataError, match="'target' is entirely NA"):
        info_of(df, kind=kind)


def test_classes_sorted_and_counted():
    df = pd.DataFrame({"x": np.arange(7.0), RESPONSE: ["pear", "apple", None, "fig", "apple", "pear", "fig"]})
    info = info_of(df, kind="classification")
    assert info.classes == ["apple", "fig", "pear"]
    assert info.n_rows == 6 and info.n_rows_total == 7
    y = encode_response(df[RESPONSE], info)
    np.testing.assert_array_equal(y[[0, 1, 3, 4, 5, 6]], [2, 0, 1, 0, 2, 1])
    assert np.isnan(y[2])


def test_integer_classes_sorted_numerically():
    df = pd.DataFrame({"x": np.arange(5.0), RESPONSE: [10, 2, 2, 33, 10]})
    info = info_of(df, kind="classification")
    assert info.classes == [2, 10, 33]
    np.testing.assert_array_equal(encode_response(df[RESPONSE], info), [1, 0, 0, 2, 1])
    json.dumps(info.to_dict())  # classes are plain python values


def test_bool_classes():
    df = pd.DataFrame({"x": np.arange(4.0), RESPONSE: [True, False, False, True]})
    info = info_of(df, kind="classification")
    assert info.classes == [False, True]
    np.testing.assert_array_equal(encode_response(df[RESPONSE], info), [1, 0, 0, 1])


def test_single_class_is_error():
    df = pd.DataFrame({"x": np.arange(4.0), RESPONSE: ["only", "only", None, "only"]})
    with pytest.raises(DataError, match="'target' has a single class 'only'"):
        info_of(df, kind="classification")


def test_single_observed_class_with_unused_category_is_error():
    """BUG: dask_dl/data/schema.py partition_stats (line 178, `y.dropna().value_counts().to_dict()`) keeps
    zero counts for unused categories of a pandas Categorical response, and build_data_info (line 282,
    `_sorted_classes(list(y))`) turns every key into a class. A response whose only observed value is 'a'
    but whose dtype declares categories ['a', 'b'] therefore gets classes ['a', 'b'] (one class with no
    training row) instead of the documented 'single class' DataError.
    Expected: DataError; actual: info.classes == ['a', 'b']."""
    y = pd.Series(pd.Categorical(["a", "a", "a", "a"], categories=["a", "b"]))
    df = pd.DataFrame({"x": np.arange(4.0), RESPONSE: y})
    with pytest.raises(DataError, match="single class"):
        info_of(df, kind="classification")


def test_unused_response_category_not_a_class():
    """Same bug as above, with 2 observed classes: the unused category 'zz' becomes a third class with no
    training row (an output unit that is never trained). Expected classes ['a', 'b'] (observed classes, as for
    categorical predictors, whose unused categories are dropped); actual ['a', 'b', 'zz']."""
    y = pd.Series(pd.Categorical(["a", "b", "a", "b"], categories=["a", "b", "zz"]))
    df = pd.DataFrame({"x": np.arange(4.0), RESPONSE: y})
    assert info_of(df, kind="classification").classes == ["a", "b"]


def test_encode_response_unseen_class_named():
    df = pd.DataFrame({"x": np.arange(4.0), RESPONSE: ["a", "b", "a", "b"]})
    info = info_of(df, kind="classification")
    with pytest.raises(DataError) as exc:
        encode_response(pd.Series(["a", "martian", None, "b"]), info)
    msg = str(exc.value)
    assert "'target'" in msg and "martian" in msg and "['a', 'b']" in msg
    y = encode_response(pd.Series(["b", None, "a"]), info)
    np.testing.assert_array_equal(y[[0, 2]], [1, 0])
    assert np.isnan(y[1])


# --------------------------------------------------------------------------- #
# training blocks
# --------------------------------------------------------------------------- #

def na_frame():
    return pd.DataFrame({
        "x": [1.0, np.nan, 3.0, 4.0, 5.0, 6.0],
        "c": ["a", "b", None, "a", "b", "a"],
        RESPONSE: [1.0, 2.0, 3.0, np.nan, 5.0, 6.0],
    })


def test_training_block_drops_na_response():
    df = na_frame()
    info = info_of(df)
    X, y, _, _ = encode_training_block(df, info)
    keep = [0, 1, 2, 4, 5]
    Xall, _ = encode_features(df, info)
    np.testing.assert_array_equal(X, Xall[keep])
    np.testing.assert_allclose(y, encode_response(df[RESPONSE], info)[keep])
    assert X.flags["C_CONTIGUOUS"] and X.dtype == np.float32 and not np.isnan(y).any()
    assert info.n_rows == 5


def test_training_block_skip_drops_na_predictors():
    df = na_frame()
    info = info_of(df, missing_values_handling="Skip")
    assert info.skip_missing
    X, y, _, _ = encode_training_block(df, info)
    keep = [0, 4, 5]
    Xall, _ = encode_features(df, info)
    np.testing.assert_array_equal(X, Xall[keep])
    np.testing.assert_allclose(y, encode_response(df[RESPONSE], info)[keep])
    # MeanImputation keeps the NA-predictor rows
    assert not info_of(df).skip_missing


def test_training_block_classification_drops_na_response():
    df = pd.DataFrame({"x": np.arange(5.0), RESPONSE: ["a", None, "b", "a", None]})
    info = info_of(df, kind="classification")
    X, y, _, _ = encode_training_block(df, info)
    assert X.shape[0] == 3
    np.testing.assert_array_equal(y, [0, 1, 0])


# --------------------------------------------------------------------------- #
# sample_block
# --------------------------------------------------------------------------- #

def test_sample_block_fraction():
    X = np.arange(20000, dtype=np.float32).reshape(-1, 2)
    y = np.arange(10000, dtype=np.float32)
    Xs, ys = sample_block((X, y), fraction=0.3, seed=1)
    assert abs(len(ys) - 3000) < 4 * math.sqrt(10000 * 0.3 * 0.7)
    np.testing.assert_array_equal(Xs[:, 0] / 2, ys)          # rows kept together
    assert len(np.unique(ys)) == len(ys)
    Xs2, ys2 = sample_block((X, y), fraction=0.3, seed=1)
    np.testing.assert_array_equal(ys, ys2)                    # deterministic for a seed


def test_stratified_sample_block_keeps_every_class_share():
    """score_validation_sampling='Stratified': each class keeps round(fraction x its rows), a rare
    class at least one row (a uniform sample loses it), weights and offsets ride along."""
    y = np.r_[np.zeros(900), np.ones(97), np.full(3, 2.0)].astype(np.float32)
    X = np.arange(len(y), dtype=np.float32)[:, None]
    w = np.arange(len(y), dtype=np.float32)
    Xs, ys, ws, os_ = sample_block((X, y, w, np.zeros(0, np.float32)), fraction=0.1, seed=4, stratified=True)
    assert [int((ys == c).sum()) for c in (0, 1, 2)] == [90, 10, 1]
    np.testing.assert_array_equal(Xs[:, 0], ws)
    assert len(os_) == 0
    lost = sum((sample_block((X, y), fraction=0.1, seed=s)[1] == 2).sum() == 0 for s in range(20))
    assert lost > 5  # uniform draws often miss the 3-row class


def test_sample_block_at_least_one_row():
    X = np.ones((5, 3), dtype=np.float32)
    y = np.arange(5, dtype=np.float32)
    for seed in range(20):
        Xs, ys = sample_block((X, y), fraction=1e-9, seed=seed)
        assert len(ys) == 1 and Xs.shape == (1, 3)
    Xs, ys = sample_block((X, y), fraction=0.0, seed=0)
    assert len(ys) == 1


def test_sample_block_full_and_empty():
    X = np.ones((5, 3), dtype=np.float32)
    y = np.arange(5, dtype=np.float32)
    Xs, ys = sample_block((X, y), fraction=1.0, seed=0)
    assert Xs is X and ys is y
    Xe, ye = sample_block((X[:0], y[:0]), fraction=0.5, seed=0)
    assert len(ye) == 0


# --------------------------------------------------------------------------- #
# DataInfo serialisation
# --------------------------------------------------------------------------- #

def test_data_info_round_trip(frame):
    info = info_of(frame)
    d = json.loads(json.dumps(info.to_dict()))
    back = DataInfo.from_dict(d)
    assert back.coef_names() == info.coef_names()
    assert back.offsets() == info.offsets() and back.n_inputs == info.n_inputs
    X1, _ = encode_features(frame, info)
    X2, _ = encode_features(frame, back)
    np.testing.assert_array_equal(X1, X2)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
def test_narrow_integer_columns_get_exact_moments(dtype):
    """8- and 16-bit integer columns (pixels, counts) skip the float64 copy: their moments come from
    exact integer sums, equal to numpy's float64 ones, merged across partitions as any column."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(3)
    x = rng.integers(info.min, info.max, 3001, endpoint=True).astype(dtype)
    df = pd.DataFrame({"x": x, "f": x.astype(np.float64), RESPONSE: rng.normal(size=len(x))})
    whole = partition_stats(df, ["x", "f"], [], "regression")
    n, mean, m2, lo, hi, na = whole["num"]["x"]
    v = x.astype(np.float64)
    assert (n, lo, hi, na) == (len(x), v.min(), v.max(), 0)
    assert mean == pytest.approx(v.mean(), rel=1e-15) and m2 == pytest.approx(((v - v.mean()) ** 2).sum(), rel=1e-12)
    assert whole["num"]["x"] == pytest.approx(whole["num"]["f"], rel=1e-12)  # the float64 path agrees
    merged = merge_stats(partition_stats(df.iloc[:1000], ["x"], [], "regression"),
                         partition_stats(df.iloc[1000:], ["x"], [], "regression"))
    assert merged["num"]["x"] == pytest.approx(whole["num"]["x"], rel=1e-12)
