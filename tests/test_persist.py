"""Saving and loading models: lossless round trips for every model kind, and a loader that refuses
newer, foreign, corrupt or code-carrying files (npz with allow_pickle=False + JSON, never pickle)."""
import io
import json
import math

import numpy as np
import pandas as pd
import pytest

import dask_dl
from dask_dl import DeepLearningClassifier, DeepLearningRegressor, load_model, save_model
from dask_dl.model import model_from_bytes, model_to_bytes
from dask_dl.persist import FORMAT_VERSION

from conftest import assert_same_predictions, split

QUIET = dict(seed=1, quiet_mode=True)


@pytest.fixture(scope="module")
def models(cluster2, iris, wine, prostate):
    """Four small fitted models (one fit each), with the frames to predict on."""
    from distributed import Client
    out = {}
    with Client(cluster2):
        tr, va = split(prostate.drop(columns=["ID"]), (0.7, 0.3))
        clf = DeepLearningClassifier(hidden=[10], epochs=3, **QUIET).fit(tr, "CAPSULE", validation_data=va)
        out["binomial"] = (clf.model_, va.drop(columns=["CAPSULE"]))

        tr, va = split(iris, (0.7, 0.3))
        clf = DeepLearningClassifier(hidden=[8], epochs=5, **QUIET).fit(tr, "class", validation_data=va)
        out["multinomial"] = (clf.model_, va.drop(columns=["class"]))

        w = wine.sample(2000, random_state=0).reset_index(drop=True)
        tr, va = split(w, (0.7, 0.3))
        reg = DeepLearningRegressor(hidden=[10], epochs=2, **QUIET).fit(tr, "quality", validation_data=va)
        assert any(c.name == "type" and c.kind == "categorical" for c in reg.model_.info.columns)
        out["regression_categorical"] = (reg.model_, va.drop(columns=["quality"]))

        tr, va = split(iris, (0.7, 0.3))
        clf = DeepLearningClassifier(hidden=[8, 6], activation="MaxoutWithDropout", hidden_dropout_ratios=[0.2, 0.1],
                                     input_dropout_ratio=0.1, epochs=5, **QUIET).fit(tr, "class")
        assert clf.model_.layout.hidden_code == 2 and clf.model_.layout.dropout[1] == 0.2
        out["maxout_dropout"] = (clf.model_, va.drop(columns=["class"]))
    return out


KINDS = ["binomial", "multinomial", "regression_categorical", "maxout_dropout"]


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _meta_of(data: bytes) -> dict:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return json.loads(z["metadata"].tobytes().decode("utf-8"))


def _rewrite(data: bytes, meta=None, state=None) -> bytes:
    """The same model file with its metadata and/or state replaced."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        old_meta, old_state = json.loads(z["metadata"].tobytes().decode("utf-8")), np.array(z["state"])
    meta = old_meta if meta is None else meta
    return _npz(state=old_state if state is None else state,
                metadata=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))


# ---------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_is_lossless(models, kind, tmp_path):
    model, X = models[kind]
    path = str(tmp_path / "model.npz")
    assert model.save(path) == path
    back = load_model(path)
    assert type(back) is dask_dl.DeepLearningModel
    assert back.kind == model.kind and back.distribution == model.distribution and back.loss == model.loss
    assert back.layout == model.layout
    assert back.state.dtype == model.state.dtype and np.array_equal(back.state, model.state)
    assert back.threshold == model.threshold
    assert back.info == model.info
    assert back.params == model.params and "client" not in back.params
    assert back.run == model.run
    assert np.array_equal(back.predict_proba_frame(X), model.predict_proba_frame(X))
    assert np.array_equal(back.predict_values(X), model.predict_values(X))
    assert back.predict_values(X).dtype == model.predict_values(X).dtype
    if model.kind != "regression":
        assert back.classes == model.classes
    pd.testing.assert_frame_equal(back.scoring_history(), model.scoring_history())  # NaN == NaN here
    assert back.summary() == model.summary()
    assert "Status of Neuron Layers" in back.summary()


def test_bytes_round_trip_and_file_url(models, tmp_path):
    model, X = models["multinomial"]
    back = model_from_bytes(model_to_bytes(model))
    assert np.array_equal(back.predict_proba_frame(X), model.predict_proba_frame(X))
    url = (tmp_path / "via_url.npz").as_uri()  # file:// URL through fsspec
    save_model(model, url)
    assert np.array_equal(load_model(url).predict_values(X), model.predict_values(X))


@pytest.mark.parametrize("kind", KINDS)
def test_a_loaded_model_predicts_lazily_on_a_dask_frame(models, kind, tmp_path):
    """One prediction implementation on the model: a model read from a file gives lazy dask output
    for dask input (the estimators' arrays and the CLI's prediction frame), equal to pandas'."""
    import dask.array as da
    import dask.dataframe as dd
    model, X = models[kind]
    path = str(tmp_path / "model.npz")
    back = load_model(model.save(path))
    dX = dd.from_pandas(X, npartitions=3)
    values, frame = back.predict(dX), back.predict_frame(dX)
    assert isinstance(values, da.Array) and isinstance(frame, dd.DataFrame)
    assert_same_predictions(values.compute(), model.predict_values(X))
    got = frame.compute()
    assert_same_predictions(got["predict"].to_numpy(), model.predict_values(X))
    if model.kind != "regression":
        proba = back.predict_proba(dX)
        assert isinstance(proba, da.Array)
        assert_same_predictions(proba.compute(), model.predict_proba_frame(X))
        assert list(got.columns) == ["predict"] + [f"p_{c}" for c in model.classes]
        assert_same_predictions(got[list(got.columns[1:])].to_numpy(), model.predict_proba_frame(X))


def test_prediction_only_copy_round_trips(models, tmp_path):
    model, X = models["maxout_dropout"]
    light = model.for_prediction()  # weights and biases only: the loader accepts this state size too
    light.save(str(tmp_path / "light.npz"))
    back = load_model(str(tmp_path / "light.npz"))
    assert np.array_equal(back.predict_proba_frame(X), model.predict_proba_frame(X))


# ------------------------------------------------------------------------------ what gets stored
def test_metadata_is_strict_json_and_non_finite_values_survive(models, tmp_path):
    model, X = models["regression_categorical"]
    twin = model_from_bytes(model_to_bytes(model))
    extra = {"timestamp": "x", "training_rmse": float("nan"), "validation_rmse": float("inf"),
             "training_deviance": float("-inf"), "epochs": np.float64(1.5), "iterations": np.int64(3)}
    twin._history.append(extra)
    path = str(tmp_path / "nonfinite.npz")
    twin.save(path)
    with open(path, "rb") as f:
        data = f.read()
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        text = z["metadata"].tobytes().decode("utf-8")

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token} in metadata")
    json.loads(text, parse_constant=refuse)  # no NaN/Infinity literals: stored specially
    back = load_model(path)
    last = back._history[-1]
    assert math.isnan(last["training_rmse"]) and last["validation_rmse"] == math.inf
    assert last["training_deviance"] == -math.inf and last["epochs"] == 1.5 and last["iterations"] == 3
    pd.testing.assert_frame_equal(back.scoring_history(), twin.scoring_history())
    assert back.summary() == twin.summary()


def test_params_never_hold_a_client(models):
    model, _ = models["binomial"]
    meta = _meta_of(model_to_bytes(model))
    assert meta["format"] == "dask_dl.model" and meta["format_version"] == FORMAT_VERSION
    assert "client" not in meta["params"]
    assert "client" not in model.params


# ------------------------------------------------------------------------------- refused files
def test_newer_format_version_is_refused_by_number(models, tmp_path):
    model, _ = models["multinomial"]
    data = model_to_bytes(model)
    meta = _meta_of(data)
    meta["format_version"] = FORMAT_VERSION + 1
    path = tmp_path / "future.npz"
    path.write_bytes(_rewrite(data, meta=meta))
    with pytest.raises(ValueError, match=rf"version {FORMAT_VERSION + 1}\b.*newer"):
        load_model(str(path))


@pytest.mark.parametrize("arrays", [
    {"a": np.arange(3)},
    {"state": np.zeros(3, np.float32), "metadata": np.frombuffer(b'{"format": "other"}', dtype=np.uint8)},
], ids=["plain-npz", "foreign-format"])
def test_foreign_npz_is_refused(tmp_path, arrays):
    path = tmp_path / "foreign.npz"
    path.write_bytes(_npz(**arrays))
    with pytest.raises(ValueError, match="not a dask_dl model"):
        load_model(str(path))


@pytest.mark.parametrize("metadata", [
    json.dumps({"format": "dask_dl.model", "format_version": 1}).encode(),     # no layout/info/...
    json.dumps({"format": "dask_dl.model", "format_version": "2"}).encode(),   # version not a number
    json.dumps({"format": "dask_dl.model", "format_version": None}).encode(),
    b"[1, 2]",                                                                  # JSON, not an object
    b"{not json",
], ids=["missing-keys", "version-str", "version-null", "json-list", "bad-json"])
def test_malformed_metadata_is_a_value_error(tmp_path, metadata):
    """Production bug (dask_dl/persist.py model_from_bytes, lines 63-73): malformed metadata escapes as
    KeyError ('layout'), TypeError ('>' between str/None and int) or AttributeError ('list' has no
    'get') instead of the ValueError the loader promises for files that are not dask_dl models."""
    path = tmp_path / "malformed.npz"
    path.write_bytes(_npz(state=np.zeros(3, np.float32), metadata=np.frombuffer(metadata, dtype=np.uint8)))
    with pytest.raises(ValueError):
        load_model(str(path))


def test_not_an_npz_at_all_is_refused(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match="damaged or not a dask_dl model file") as err:
        load_model(str(path))
    assert str(path) in str(err.value) and "allow_pickle" not in str(err.value)


def test_corrupt_state_size_is_refused(models, tmp_path):
    model, _ = models["multinomial"]
    data = model_to_bytes(model)
    path = tmp_path / "short.npz"
    path.write_bytes(_rewrite(data, state=model.state[:-5]))
    with pytest.raises(ValueError, match="corrupt"):
        load_model(str(path))


def test_changed_weights_are_refused_by_the_checksum_and_old_files_still_load(models, tmp_path):
    """The file carries the SHA-256 of its weights: a weight changed after writing (same size, a
    sound zip) is refused; a file written before checksums (none in its metadata) loads."""
    model, X = models["multinomial"]
    data = model_to_bytes(model)
    meta = _meta_of(data)
    assert len(meta["state_sha256"]) == 64
    changed = model.state.copy()
    changed[0] += 1.0
    path = tmp_path / "changed.npz"
    path.write_bytes(_rewrite(data, state=changed))
    with pytest.raises(ValueError, match=r"its weights do not match the checksum written with them"):
        load_model(str(path))
    del meta["state_sha256"]
    old = tmp_path / "old.npz"
    old.write_bytes(_rewrite(data, meta=meta))
    np.testing.assert_array_equal(load_model(str(old)).state, model.state)


def _write_marker(path):
    with open(path, "w") as f:
        f.write("code ran")
    return 0


class _Payload:
    """Unpickling this object runs _write_marker(path): what a malicious model file would do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (_write_marker, (self.path,))


@pytest.mark.parametrize("where", ["state", "metadata"])
def test_pickled_object_array_is_refused_without_running_it(models, tmp_path, where):
    model, _ = models["multinomial"]
    marker = tmp_path / "marker.txt"
    evil = np.array([_Payload(str(marker))], dtype=object)
    with np.load(io.BytesIO(model_to_bytes(model)), allow_pickle=False) as z:
        arrays = {"state": np.array(z["state"]), "metadata": np.array(z["metadata"])}
    arrays[where] = evil
    data = _npz(**arrays)  # np.savez pickles object arrays (allow_pickle defaults to True)

    # sanity: a pickle-allowing loader would run the payload
    with np.load(io.BytesIO(data), allow_pickle=True) as z:
        z[where]
    assert marker.exists()
    marker.unlink()

    path = tmp_path / "evil.npz"
    path.write_bytes(data)
    with pytest.raises(ValueError):
        load_model(str(path))
    with pytest.raises(ValueError):
        model_from_bytes(data)
    assert not marker.exists()


def test_a_local_model_file_is_replaced_whole_or_not_at_all(models, tmp_path, monkeypatch):
    """save writes a temporary file and renames it: a failure (or a kill) mid-write leaves the
    previous model loadable and no partial file."""
    import os
    from fsspec.implementations.local import LocalFileSystem
    model, _ = models["multinomial"]
    path = str(tmp_path / "m.npz")
    model.save(path)
    before = open(path, "rb").read()

    def fail(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(LocalFileSystem, "mv", fail)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert open(path, "rb").read() == before and os.listdir(tmp_path) == ["m.npz"]
