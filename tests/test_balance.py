"""Class balancing (issue 18 point 2): balance_classes, class_sampling_factors, max_after_balance_size.
Each encoded block is over/under-sampled where it lies (no data collected); the epoch counts the
balanced rows; predicted probabilities are corrected back to the original priors, as H2O does."""
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from dask_dl import DataError, DeepLearningClassifier, DeepLearningRegressor
from dask_dl.data.encode import balance_block, encode_features
from dask_dl.nn.forward import forward

QUIET = dict(quiet_mode=True, seed=1)


@pytest.fixture(scope="module")
def rare(covtype):
    """covtype as a binary problem whose positive class is 10.8% of the rows."""
    return covtype.assign(Cover_Type=np.where(covtype.Cover_Type == "class_4", "yes", "no"))


def test_balance_block_repeats_each_class_by_its_factor():
    y = np.r_[np.zeros(1000), np.ones(1000)].astype(np.float32)
    X = np.arange(2000, dtype=np.float32)[:, None]
    w = np.arange(2000, dtype=np.float32)
    Xb, yb, wb, ob = balance_block((X, y, w, np.zeros(0, np.float32)), factors=[0.25, 3.5], seed=3)
    copies = np.bincount(Xb[:, 0].astype(int), minlength=2000)
    assert set(copies[:1000]) <= {0, 1} and abs(copies[:1000].mean() - 0.25) < 0.05
    assert set(copies[1000:]) <= {3, 4} and abs(copies[1000:].mean() - 3.5) < 0.05
    np.testing.assert_array_equal(Xb[:, 0], wb)  # rows stay whole
    assert len(ob) == 0 and not np.all(np.diff(Xb[:, 0]) >= 0)  # shuffled
    again = balance_block((X, y, w, np.zeros(0, np.float32)), factors=[0.25, 3.5], seed=3)
    np.testing.assert_array_equal(again[0], Xb)  # a partition balances the same way every time


@pytest.mark.parametrize("out_of_core", [False, True], ids=["in-memory", "out-of-core"])
def test_balanced_training_counts_balanced_rows_and_predicts_original_priors(client2, rare, tmp_path,
                                                                            out_of_core):
    n_yes, n_no = (rare.Cover_Type == "yes").sum(), (rare.Cover_Type == "no").sum()
    data = rare
    if out_of_core:
        dd.from_pandas(rare, npartitions=4).to_parquet(str(tmp_path / "rare"))
        data = dd.read_parquet(str(tmp_path / "rare"))
    clf = DeepLearningClassifier(balance_classes=True, hidden=[16], epochs=2, out_of_core=out_of_core,
                                 client=client2, **QUIET).fit(data, "Cover_Type")
    info, run = clf.model_.info, clf.model_.run
    assert info.class_factors == pytest.approx([1.0, n_no / n_yes])
    balanced = 2 * n_no
    assert run["samples"] == pytest.approx(2 * balanced, rel=0.03)  # an epoch is the balanced rows
    assert run["out_of_core"] == out_of_core
    X = rare.drop(columns="Cover_Type")
    p_yes = clf.predict_proba(X)[:, list(clf.classes_).index("yes")]
    assert p_yes.mean() == pytest.approx(n_yes / len(rare), abs=0.03)  # corrected to the prior
    raw = forward(clf.model_.layout, clf.model_.state, encode_features(X, info)[0]).astype(np.float64)
    ratio = (n_yes / len(rare)) / 0.5 / ((n_no / len(rare)) / 0.5)  # prior / balanced share, yes over no
    expect = raw[:, 1] * ratio / (raw[:, 1] * ratio + raw[:, 0])  # H2O's correction p_c * prior_c / balanced_c
    np.testing.assert_allclose(p_yes, expect, rtol=1e-5, atol=1e-7)
    assert raw[:, 1].mean() > p_yes.mean() + 0.02  # the network itself learned balanced classes
    hist = clf.model_.scoring_history()
    assert "class-balanced" in hist.attrs["training_metrics_on"]
    assert "class-balanced" in clf.model_.summary()


def test_class_sampling_factors_and_the_size_cap(client2, rare, iris):
    n = len(rare)
    capped = DeepLearningClassifier(balance_classes=True, max_after_balance_size=1.0, hidden=[4], epochs=1,
                                    client=client2, **QUIET).fit(rare, "Cover_Type")
    assert capped.model_.run["samples"] == pytest.approx(n, rel=0.03)
    given = DeepLearningClassifier(balance_classes=True, class_sampling_factors=[1.0, 2.0, 0.5], hidden=[4],
                                   epochs=1, client=client2, **QUIET).fit(iris, "class")
    assert given.model_.info.class_factors == [1.0, 2.0, 0.5]
    assert given.model_.info.class_balanced == pytest.approx([50 / 175, 100 / 175, 25 / 175])
    proba = given.predict_proba(iris.drop(columns="class"))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_bad_class_balance_parameters(no_cluster, iris, wine):
    X, y = iris.drop(columns="class"), iris["class"]
    with pytest.raises(ValueError, match=r"class_sampling_factors needs balance_classes=True"):
        DeepLearningClassifier(class_sampling_factors=[1, 2, 3], **QUIET).fit(X, y)
    with pytest.raises(DataError, match=r"class_sampling_factors has 2 values; response 'class' has 3 classes"):
        DeepLearningClassifier(balance_classes=True, class_sampling_factors=[1, 2], **QUIET).fit(X, y)
    with pytest.raises(ValueError, match=r"class_sampling_factors=\[1, -2\].*positive numbers"):
        DeepLearningClassifier(balance_classes=True, class_sampling_factors=[1, -2], **QUIET).fit(X, y)
    with pytest.raises(ValueError, match=r"max_after_balance_size=0"):
        DeepLearningClassifier(balance_classes=True, max_after_balance_size=0, **QUIET).fit(X, y)
    with pytest.raises(ValueError, match=r"balance_classes and class_sampling_factors are for classifiers"):
        DeepLearningRegressor(balance_classes=True, **QUIET).fit(wine.drop(columns=["quality", "type"]),
                                                               wine["quality"])
