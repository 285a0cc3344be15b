"""categorical_encoding and max_categorical_features (issue 18 point 3): every encoding H2O's Deep
Learning accepts, built from the statistics pass's level counts, trains and predicts the same way on
pandas, dask and loaded models; a column too wide for one-hot is refused by name unless the user
asked for limiting, a narrow encoding or hashing."""
import numpy as np
import pandas as pd
import pytest

from dask_dl import DataError, DeepLearningClassifier, DeepLearningRegressor, load_model
from dask_dl import params as P
from dask_dl.data import categorical as enc
from dask_dl.data.encode import encode_features
from dask_dl.data.schema import RESPONSE, column_role, in_memory_data_info

from conftest import assert_same_predictions

QUIET = dict(quiet_mode=True, seed=1)


def _info(frame, response, kind="classification", **params):
    frame = frame.rename(columns={response: RESPONSE})
    roles = {c: column_role(c, frame[c].dtype) for c in frame.columns if c != RESPONSE}
    dist = "multinomial" if kind == "classification" else "gaussian"
    return in_memory_data_info(frame, roles, dict(P.DEFAULTS, **params), kind, response, dist), frame


def _frame(n=2000, seed=0):
    """A categorical column of 12 levels with level-dependent response, and a numeric one."""
    rng = np.random.default_rng(seed)
    level = rng.choice([f"L{i:02d}" for i in range(12)], n, p=np.r_[np.full(6, 0.125), np.full(6, 1 / 24)])
    effect = {f"L{i:02d}": (i * 7 % 12) / 4.0 for i in range(12)}
    x = rng.normal(size=n)
    y = np.array([effect[v] for v in level]) + 0.5 * x + rng.normal(scale=0.3, size=n)
    return pd.DataFrame({"cat": level, "x": x, "y": y})


def test_binary_and_label_encodings_write_the_level_index():
    df = _frame()
    info, frame = _info(df, "y", "regression", categorical_encoding="Binary")
    assert info.n_inputs == enc.binary_bits(12) + 1 == 5
    assert info.coef_names() == ["cat.bit0", "cat.bit1", "cat.bit2", "cat.bit3", "x"]  # numbers: frame order
    X, _ = encode_features(frame.assign(cat=["L03", None, "unseen"] + ["L00"] * (len(frame) - 3)), info)
    assert X[0, :4].tolist() == [0, 0, 1, 0]  # L03 is index 3: code 4 = 0b0100, low bit first
    assert X[1, :4].tolist() == [0, 0, 0, 0] and X[2, :4].tolist() == [0, 0, 0, 0]  # NA, unseen
    info, frame = _info(df, "y", "regression", categorical_encoding="LabelEncoder")
    col = next(c for c in info.columns if c.name == "cat")
    codes = pd.Index(col.levels).get_indexer(df.cat)
    expect = (codes - codes.mean()) / codes.std(ddof=1)
    np.testing.assert_allclose(encode_features(frame, info)[0][:, info.coef_names().index("cat")], expect, rtol=1e-5,
                               atol=1e-6)


def test_sort_by_response_ranks_levels_by_their_mean_response():
    df = _frame()
    info, frame = _info(df, "y", "regression", categorical_encoding="SortByResponse")
    col = next(c for c in info.columns if c.name == "cat")
    means = df.groupby("cat").y.mean()
    assert [col.levels[int(i)] for i in np.argsort(col.values)] == list(means.sort_values().index)
    clf_info, _ = _info(df.assign(y=np.where(df.y > df.y.median(), "hi", "lo")), "y",
                        categorical_encoding="SortByResponse")
    ccol = next(c for c in clf_info.columns if c.name == "cat")
    share_lo = (df.y <= df.y.median()).groupby(df.cat).mean()  # class index 1 is "lo"
    assert [ccol.levels[int(i)] for i in np.argsort(ccol.values, kind="stable")] == \
        list(share_lo.sort_values(kind="stable").index)


def test_eigen_is_the_projection_on_the_one_hot_first_principal_component():
    df = _frame()
    info, frame = _info(df, "y", "regression", categorical_encoding="Eigen")
    col = next(c for c in info.columns if c.name == "cat")
    onehot = pd.get_dummies(df.cat)[col.levels].to_numpy(dtype=float)
    _, vecs = np.linalg.eigh(np.cov(onehot.T, bias=True))
    proj = onehot @ vecs[:, -1]
    expect = (proj - proj.mean()) / proj.std(ddof=1)
    got = encode_features(frame, info)[0][:, info.coef_names().index("cat")]
    np.testing.assert_allclose(np.abs(np.corrcoef(got, expect)[0, 1]), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.abs(got), np.abs(expect), rtol=1e-4, atol=1e-5)


def test_enum_limited_keeps_the_most_frequent_levels():
    df = _frame()
    info, frame = _info(df, "y", "regression", categorical_encoding="EnumLimited")
    col = next(c for c in info.columns if c.name == "cat")
    assert col.levels == sorted(df.cat.value_counts().index[:enc.ENUM_LIMIT])
    X, _ = encode_features(frame, info)
    rare = ~df.cat.isin(col.levels).to_numpy()
    missing = info.coef_names().index("cat.missing(NA)")
    assert rare.any() and (X[rare, missing] == 1).all() and (X[~rare, missing] == 0).all()


def _murmur2_reference(c: int, seed: int) -> int:
    """MurmurHash2 of c's 4 big-endian bytes as the canonical byte-wise algorithm reads them."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    data = (c & mask).to_bytes(4, "big")
    h = (seed ^ len(data)) & mask
    k = int.from_bytes(data, "little")
    k = (k * m) & mask
    k ^= k >> 24
    k = (k * m) & mask
    h = (h * m) & mask
    h ^= k
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h >= 1 << 31 else h


def test_hashing_follows_h2o_murmurhash_and_adds_collisions():
    for seed in (0, 1, 1234567, 0xFFFFFFFF):
        idx = np.arange(0, 5000, 7)
        ref = [abs(int(np.fmod(_murmur2_reference(int(c), seed), 37))) for c in idx]
        assert enc.murmur_slot(idx, seed, 37).tolist() == ref
    df = _frame()
    info, frame = _info(df.assign(cat2=df.cat.str[::-1]), "y", "regression", max_categorical_features=5, seed=11)
    assert info.hash_slots == 5 and info.n_inputs == 5 + 1
    assert info.coef_names()[:5] == [f"categorical_hash.{i}" for i in range(5)]
    X, _ = encode_features(frame, info)
    np.testing.assert_array_equal(X[:, :5].sum(axis=1), 2.0)  # one active slot per column, collisions add
    wide, _ = _info(df, "y", "regression", max_categorical_features=1000)
    assert wide.hash_slots == 0  # fewer one-hot inputs than the limit: no hashing


def test_an_identifier_column_is_refused_unless_narrowed(no_cluster):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"id": [f"user{i}" for i in range(3000)], "x": rng.normal(size=3000),
                       "y": rng.normal(size=3000)})
    with pytest.raises(DataError, match=r"categorical column 'id' has 3,000 distinct values.*EnumLimited"):
        DeepLearningRegressor(**QUIET).fit(df, "y")
    for params in (dict(categorical_encoding="EnumLimited"), dict(categorical_encoding="Binary"),
                   dict(max_categorical_features=64)):
        info, _ = _info(df, "y", "regression", **params)
        assert info.n_inputs <= 65, params


@pytest.mark.parametrize("encoding", [e for e in P.CATEGORICAL_ENCODINGS if e != "AUTO"] + ["hashing"])
def test_every_encoding_trains_predicts_and_loads(client2, covtype, tmp_path, encoding):
    import dask.dataframe as dd
    df = covtype.sample(6000, random_state=1).reset_index(drop=True)
    train, test = df.iloc[:5000], df.iloc[5000:]
    params = dict(max_categorical_features=24) if encoding == "hashing" else dict(categorical_encoding=encoding)
    clf = DeepLearningClassifier(hidden=[32], epochs=3, client=client2, **params, **QUIET).fit(train, "Cover_Type")
    X = test.drop(columns="Cover_Type")
    accuracy = clf.score(X, test.Cover_Type)
    assert accuracy > 0.5, accuracy  # 7 classes, the largest 30%
    path = str(tmp_path / f"{encoding}.dl")
    clf.model_.save(path)
    np.testing.assert_allclose(load_model(path).predict_proba(X), clf.predict_proba(X), rtol=1e-6)
    lazy = clf.predict_proba(dd.from_pandas(X, npartitions=2)).compute()
    assert_same_predictions(lazy, clf.predict_proba(X))
    assert len(clf.model_.varimp()) == clf.model_.info.n_inputs


def test_bad_encoding_parameters(no_cluster, iris):
    X, y = iris.drop(columns="class"), iris["class"]
    for bad in ("Enum", "OneHotExplicit"):
        with pytest.raises(ValueError, match=rf"categorical_encoding='{bad}'.*H2O's Deep Learning refuses"):
            DeepLearningClassifier(categorical_encoding=bad, **QUIET).fit(X, y)
    with pytest.raises(ValueError, match=r"categorical_encoding='onehot': expected one of \['AUTO'"):
        DeepLearningClassifier(categorical_encoding="onehot", **QUIET).fit(X, y)
    with pytest.raises(ValueError, match=r"max_categorical_features=0"):
        DeepLearningClassifier(max_categorical_features=0, **QUIET).fit(X, y)
