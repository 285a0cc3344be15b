"""Deep autoencoders (issue 19): anomaly detection, deep features, pretraining, on the same engine.
Kernel gradients (the true reconstruction gradient, sparsity) are in test_kernels.py."""
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from dask_dl import DataError, DeepLearningAutoencoder, DeepLearningClassifier, load_model
from dask_dl.nn.forward import hidden_activations

from conftest import data_path

QUIET = dict(quiet_mode=True, seed=1)


@pytest.fixture(scope="module")
def ecg():
    tr = pd.read_csv(data_path("ecg", "ecg_discord_train.csv"), header=None)
    te = pd.read_csv(data_path("ecg", "ecg_discord_test.csv"), header=None)
    tr.columns = te.columns = [f"C{i + 1}" for i in range(tr.shape[1])]
    return tr, te


def test_ecg_anomalies_have_the_highest_reconstruction_errors(client2, ecg):
    """The booklet's use case: trained on 20 normal heartbeats (Tanh, [50, 20, 50], l1=1e-4, 100
    epochs), the 3 anomalies appended to the 23-row test set score highest, in 9 of 10 seeds or more."""
    train, test = ecg
    found = 0
    for seed in range(1, 11):
        ae = DeepLearningAutoencoder(activation="Tanh", hidden=[50, 20, 50], l1=1e-4, epochs=100, seed=seed,
                                     quiet_mode=True, client=client2).fit(train)
        found += set(np.argsort(-ae.anomaly(test))[:3]) == {20, 21, 22}
    assert found >= 9
    history = ae.model_.scoring_history()
    assert list(history.columns[-2:]) == ["training_rmse", "training_mse"]
    assert history["training_mse"].iloc[0] > 2 * history["training_mse"].iloc[-1]  # row 0: the untrained model


def test_per_feature_errors_are_the_normalised_squared_errors(client2, iris):
    """reconstr_<input>.SE = ((x - mean)/(max - min) - (reconstruction - mean)/(max - min))^2 for a
    numeric input, the one-hot slots' squared errors for a categorical; their row means are
    anomaly(); the columns: the 3 class levels, the missing slot, then the 4 numerics."""
    ae = DeepLearningAutoencoder(hidden=[5], epochs=5, client=client2, **QUIET).fit(iris)
    errors = ae.anomaly(iris, per_feature=True)
    assert list(errors.columns) == ["reconstr_class.Iris-setosa.SE", "reconstr_class.Iris-versicolor.SE",
                                    "reconstr_class.Iris-virginica.SE", "reconstr_class.missing(NA).SE",
                                    "reconstr_sepal_len.SE", "reconstr_sepal_wid.SE", "reconstr_petal_len.SE",
                                    "reconstr_petal_wid.SE"]
    recon = ae.reconstruct(iris)
    for col in ["sepal_len", "sepal_wid", "petal_len", "petal_wid"]:
        x, span = iris[col], iris[col].max() - iris[col].min()
        expect = ((x - x.mean()) / span - (recon[f"reconstr_{col}"] - x.mean()) / span) ** 2
        np.testing.assert_allclose(errors[f"reconstr_{col}.SE"], expect, rtol=1e-4, atol=1e-9)
    onehot = (iris["class"] == "Iris-setosa").astype(float)
    np.testing.assert_allclose(errors["reconstr_class.Iris-setosa.SE"],
                               (recon["reconstr_class.Iris-setosa"] - onehot) ** 2, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(errors.mean(axis=1), ae.anomaly(iris), rtol=1e-6)
    assert ae.model_.info.use_all_factor_levels  # forced for autoencoders, as H2O


def test_dask_input_gives_lazy_output_and_a_loaded_model_agrees(client2, iris, tmp_path):
    ae = DeepLearningAutoencoder(hidden=[6, 2, 6], activation="Tanh", epochs=20, client=client2, **QUIET).fit(iris)
    lazy = dd.from_pandas(iris, npartitions=3)
    scores = ae.anomaly(lazy)
    assert hasattr(scores, "dask")
    np.testing.assert_allclose(scores.compute(), ae.anomaly(iris), rtol=1e-6)
    per_feature = ae.anomaly(lazy, per_feature=True)
    assert isinstance(per_feature, dd.DataFrame)
    np.testing.assert_allclose(per_feature.compute().to_numpy(), ae.anomaly(iris, per_feature=True).to_numpy(),
                               rtol=1e-6)
    codes = ae.transform(iris)
    assert codes.shape == (150, 2)
    np.testing.assert_allclose(ae.transform(lazy).compute(), codes, rtol=1e-6)
    np.testing.assert_allclose(ae.deepfeatures(iris, 2).to_numpy().shape, (150, 6))
    decoded = ae.inverse_transform(codes)  # the code layer decoded: the network's output
    X = ae.model_.info
    from dask_dl.data.encode import encode_features
    from dask_dl.nn.forward import forward
    np.testing.assert_allclose(decoded, forward(ae.model_.layout, ae.model_.state, encode_features(iris, X)[0]),
                               rtol=1e-5, atol=1e-6)
    path = str(tmp_path / "ae.dl")
    ae.model_.save(path)
    loaded = load_model(path)
    assert loaded.kind == "autoencoder" and "Tanh" in loaded.summary()
    np.testing.assert_allclose(loaded.anomaly(iris), ae.anomaly(iris), rtol=1e-6)
    np.testing.assert_allclose(loaded.predict(iris).to_numpy(), ae.reconstruct(iris).to_numpy(), rtol=1e-6)


def test_deep_features_of_a_supervised_model(client2, iris):
    """deepfeatures(X, layer) on every estimator: hidden layer ``layer``'s activations in scoring
    mode (dropout layers scaled by 1 - ratio), H2O's DF.L<layer+1>.C<j> columns."""
    clf = DeepLearningClassifier(hidden=[8, 4], activation="RectifierWithDropout", hidden_dropout_ratios=[0.5, 0.2],
                                 epochs=3, client=client2, **QUIET).fit(iris, "class")
    X = iris.drop(columns="class")
    df = clf.deepfeatures(X, 1)
    assert list(df.columns) == [f"DF.L2.C{j}" for j in range(1, 5)]
    from dask_dl.data.encode import encode_features
    m = clf.model_
    a1 = np.maximum(encode_features(X, m.info)[0] @ m.weights(1).T + m.biases(1), 0) * 0.5
    a2 = np.maximum(a1 @ m.weights(2).T + m.biases(2), 0) * 0.8
    np.testing.assert_allclose(df.to_numpy(), a2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hidden_activations(m.layout, m.state, encode_features(X, m.info)[0], 0), a1,
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"layer=2: this network has 2 hidden layer\(s\), numbered 0 to 1"):
        clf.deepfeatures(X, 2)
    with pytest.raises(ValueError, match=r"anomaly\(\) is an autoencoder's"):
        clf.model_.anomaly(X)


def test_pretraining_starts_the_hidden_layers_from_the_autoencoder(client2, iris):
    X = iris.drop(columns="class")
    ae = DeepLearningAutoencoder(hidden=[8, 4], activation="Tanh", epochs=5, client=client2, **QUIET).fit(X)
    clf = DeepLearningClassifier(hidden=[8, 4], activation="Tanh", epochs=0, pretrained_autoencoder=ae,
                                 client=client2, **QUIET).fit(iris, "class")
    for l in (1, 2):
        np.testing.assert_array_equal(clf.model_.weights(l), ae.model_.weights(l))
        np.testing.assert_array_equal(clf.model_.biases(l), ae.model_.biases(l))
    assert clf.model_.params["pretrained_autoencoder"] == "autoencoder [4, 8, 4, 4]"  # saved as a description
    trained = DeepLearningClassifier(hidden=[8, 4], activation="Tanh", epochs=20, pretrained_autoencoder=ae.model_,
                                     client=client2, **QUIET).fit(iris, "class")
    assert trained.score(X, iris["class"]) > 0.9
    with pytest.raises(ValueError, match=r"pretrained_autoencoder has layers \[4, 8, 4, 4\]; this network's "
                                         r"input and hidden layers \[4, 16\]"):
        DeepLearningClassifier(hidden=[16], pretrained_autoencoder=ae, **QUIET).fit(iris, "class")
    with pytest.raises(ValueError, match=r"pretrained_autoencoder was trained on other inputs"):
        DeepLearningClassifier(hidden=[8, 4], pretrained_autoencoder=ae, **QUIET).fit(iris, "sepal_len")
    with pytest.raises(ValueError, match=r"pretrained_autoencoder=.*a fitted DeepLearningAutoencoder"):
        DeepLearningClassifier(pretrained_autoencoder=clf, **QUIET).fit(iris, "class")


@pytest.mark.parametrize("params", [dict(mini_batch_size=8), dict(input_dropout_ratio=0.2),
                                    dict(loss="Absolute"), dict(loss="Huber")],
                         ids=["mini-batch", "denoising", "absolute", "huber"])
def test_autoencoder_variants_learn(client2, ecg, params):
    train, _ = ecg
    ae = DeepLearningAutoencoder(activation="Tanh", hidden=[20], epochs=50, client=client2, **QUIET,
                                 **params).fit(train)
    history = ae.model_.scoring_history()["training_mse"]
    assert history.iloc[-1] < 0.5 * history.iloc[0]


def test_early_stopping_and_regression_stop_read_the_reconstruction_mse(client2, ecg):
    train, test = ecg
    stopped = DeepLearningAutoencoder(activation="Tanh", hidden=[20], epochs=500, stopping_rounds=2,
                                      stopping_tolerance=0.5, score_each_iteration=True,
                                      train_samples_per_iteration=20, client=client2, **QUIET)
    stopped.fit(train, validation_data=test)
    assert stopped.model_.run["stop_reason"] == "early_stopping" and stopped.model_.run["epochs"] < 500
    done = DeepLearningAutoencoder(activation="Tanh", hidden=[20], epochs=500, regression_stop=0.05,
                                   client=client2, **QUIET).fit(train)
    assert done.model_.run["stop_reason"] == "regression_stop"
    assert done.model_.scoring_history()["training_mse"].iloc[-1] <= 0.05


def test_sparsity_pulls_mean_activations_to_the_target(client2, ecg):
    train, _ = ecg
    mean = {}
    for beta in (0.0, 1.0):
        ae = DeepLearningAutoencoder(activation="Tanh", hidden=[20], epochs=50, sparsity_beta=beta,
                                     average_activation=-0.5, client=client2, **QUIET).fit(train)
        mean[beta] = ae.deepfeatures(train, 0).to_numpy().mean()
    assert abs(mean[1.0] + 0.5) < abs(mean[0.0] + 0.5) - 0.1


def test_out_of_core_and_validation_frames(client2, ecg, tmp_path):
    train, test = ecg
    path = str(tmp_path / "ecg")
    dd.from_pandas(pd.concat([train] * 20, ignore_index=True), npartitions=4).to_parquet(path)
    ae = DeepLearningAutoencoder(activation="Tanh", hidden=[20], epochs=2, out_of_core=True, client=client2,
                                 **QUIET).fit(dd.read_parquet(path), validation_data=test)
    assert ae.model_.run["out_of_core"]
    history = ae.model_.scoring_history()
    assert history["validation_mse"].iloc[-1] == pytest.approx(float(np.mean(ae.anomaly(test))), rel=1e-5)
    assert ae.model_.model_performance(test)["mse"] == pytest.approx(float(np.mean(ae.anomaly(test))), rel=1e-6)


def test_bad_autoencoder_parameters(no_cluster, iris):
    for params, message in [
        (dict(activation="Maxout"), r"activation='Maxout': an autoencoder takes Tanh or Rectifier"),
        (dict(loss="CrossEntropy"), r"loss='CrossEntropy': an autoencoder's reconstruction loss"),
        (dict(stopping_metric="logloss"), r"stopping_metric='logloss': an autoencoder is scored by its reconstruction"),
        (dict(sparsity_beta=0.1, activation="Rectifier"), r"average_activation=0.0: Rectifier units need"),
        (dict(sparsity_beta=0.1, average_activation=0.1, mini_batch_size=4), r"sparsity_beta trains per sample"),
        (dict(weights_column="sepal_len"), r"weights_column: supervised parameters"),
        (dict(sparse=True), r"sparse=True keeps zeros uncentred"),
    ]:
        with pytest.raises(ValueError, match=message):
            DeepLearningAutoencoder(**params, **QUIET).fit(iris)
    with pytest.raises(ValueError, match=r"sparsity_beta is for autoencoders"):
        DeepLearningClassifier(sparsity_beta=0.1, **QUIET).fit(iris, "class")
    with pytest.raises(DataError, match=r"X has a column named '__dask_dl_response__'"):
        DeepLearningAutoencoder(**QUIET).fit(iris.assign(__dask_dl_response__=1.0))
