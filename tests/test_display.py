"""Jupyter HTML and plain-text pages (dask_dl/display.py) of real fitted models on real data."""
import copy
import re
from html.parser import HTMLParser

import numpy as np
import pytest

import dask_dl
from dask_dl import display
from dask_dl.model import load_model

from conftest import split

FAST = dict(hidden=[8], epochs=3, quiet_mode=True, seed=1)
CHANGED = {"hidden": "[8]", "epochs": "3", "seed": "1", "quiet_mode": "True"}  # FAST as the page shows it
VOID = {"br", "hr", "img", "meta", "input", "col", "wbr"}


class Page(HTMLParser):
    """The parsed page: its header, and per section title its lines and tables (rows of cell
    texts). Parsing asserts the HTML is well formed: every tag closed, in order."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.stack, self.tags, self.sections, self.header = [], [], {}, None
        self._text, self._section, self._table, self._row = None, None, None, None
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed tags {self.stack}"

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)
        if tag in ("summary", "td", "th", "p") or (tag == "div" and ("class", "dask-dl-repr-header") in attrs):
            self._text = []
        elif tag == "table":
            self._table = []
        elif tag == "tr":
            self._row = []

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        text = "".join(self._text or []).strip()
        if tag == "summary":
            self._section = self.sections.setdefault(text, {"lines": [], "tables": []})
        elif tag == "div" and self.header is None and self._text is not None:
            self.header = text
        elif tag == "p":
            self._section["lines"].append(text)
        elif tag in ("td", "th"):
            self._row.append(text)
        elif tag == "tr":
            self._table.append(self._row)
        elif tag == "table":
            self._section["tables"].append(self._table)
        if tag in ("summary", "td", "th", "p", "div"):
            self._text = None

    def section(self, start: str) -> dict:
        found = [s for title, s in self.sections.items() if title.startswith(start)]
        assert len(found) == 1, f"no single section {start!r} in {list(self.sections)}"
        return found[0]

    def facts(self, start: str, table: int = 0) -> dict:
        """A name -> value table of a section as a dict."""
        rows = self.section(start)["tables"][table]
        assert all(len(r) == 2 for r in rows)
        return dict(rows)


def g(v) -> str:
    return "" if np.isnan(v) else f"{v:.6g}"


def assert_line(text: str, cells) -> None:
    """``text`` has a line holding exactly these cells, separated by blanks."""
    pattern = r"^\s*" + r"\s+".join(re.escape(str(c)) for c in cells) + r"\s*$"
    assert re.search(pattern, text, re.M), f"no line {cells} in:\n{text}"


def check_confusion(page: Page, text: str, perf, section: str) -> None:
    """The confusion matrix shown is the one ``perf.confusion_matrix()`` gives, counts included."""
    cm = perf.confusion_matrix()
    shown = page.section(section)["tables"][1]
    assert shown[0] == [""] + [str(c) for c in cm.columns]
    expected = [[str(name)] + [g(v) for v in row[:-1]] + [row.iloc[-1]] for name, row in cm.iterrows()]
    assert shown[1:] == expected
    for row in expected:
        assert_line(text, row)
    assert cm.iloc[:, :-2].to_numpy().sum() == perf["nobs"] > 0


def check_common(model, page: Page, text: str) -> None:
    """The facts every page states: changed parameters only, layers, run, last scoring row."""
    assert page.facts("Parameters") == CHANGED  # nothing left at its default is listed
    for name, value in CHANGED.items():
        assert_line(text, [name, value])
    assert not re.search(r"^activation\s", text, re.M)
    layers = page.section("Status of Neuron Layers")["tables"][0]
    units_at = layers[0].index("units")
    assert [r[units_at] for r in layers[1:]] == [str(u) for u in model.layout.units]
    run = page.facts("Run")
    assert run["stop_reason"] == model.run["stop_reason"] and run["samples"] == str(model.run["samples"])
    assert_line(text, ["stop_reason", model.run["stop_reason"]])
    last = model.scoring_history().iloc[-1]
    assert page.facts("Last scoring")["training_" + METRIC[model.kind]] == g(last["training_" + METRIC[model.kind]])
    assert page.header == text.splitlines()[0] and f"units {list(model.layout.units)}" in page.header


METRIC = {"multinomial": "logloss", "binomial": "logloss", "regression": "deviance", "autoencoder": "mse"}


@pytest.fixture(scope="module")
def cluster(cluster2):
    """One client for the module's fits, on the session's 2-worker LocalCluster."""
    from distributed import Client
    with Client(cluster2) as c:
        yield c


@pytest.fixture(scope="module")
def iris_model(cluster, iris):
    train, valid = split(iris, (0.7, 0.3))
    return dask_dl.DeepLearningClassifier(**FAST).fit(train, "class", validation_data=valid)


def test_multinomial_page_with_validation(iris_model):
    model = iris_model.model_
    html, text = model._repr_html_(), str(model)
    page = Page(html)
    assert text == model.describe() and repr(model) == "<DeepLearningModel multinomial [4, 8, 3]>"
    check_common(model, page, text)
    train, valid = model.training_metrics(), model.validation_metrics()
    assert valid is not None and valid["nobs"] == 45 and train["nobs"] == 105
    for section, perf in (("Training metrics", train), ("Validation metrics", valid)):
        facts = page.facts(section)
        assert facts["logloss"] == g(perf["logloss"])
        assert facts["classification_error"] == g(perf["classification_error"])
        check_confusion(page, text, perf, section)
    assert_line(text, ["logloss", g(valid["logloss"])])
    last = model.scoring_history().iloc[-1]
    assert page.facts("Last scoring")["validation_logloss"] == g(last["validation_logloss"])
    assert "Cross-validation" not in " ".join(page.sections)
    assert set(page.tags) >= {"style", "details", "summary", "table"} and "script" not in page.tags


def test_binomial_page(cluster, prostate):
    X = prostate.drop(columns=["ID"])
    model = dask_dl.DeepLearningClassifier(**FAST).fit(X, "CAPSULE").model_
    page, text = Page(model._repr_html_()), model.describe()
    check_common(model, page, text)
    perf = model.training_metrics()
    assert model.kind == "binomial" and page.facts("Training metrics")["auc"] == g(perf["auc"])
    assert "Confusion matrix at the max-F1 threshold (rows: actual, columns: predicted):" in \
        page.section("Training metrics")["lines"]
    check_confusion(page, text, perf, "Training metrics")
    assert "Validation metrics" not in page.sections and "Validation metrics" not in text


def test_regression_page_has_no_confusion_matrix(cluster, wine):
    X = wine.drop(columns=["type"]).iloc[:400]
    model = dask_dl.DeepLearningRegressor(**FAST).fit(X, "quality").model_
    html, text = model._repr_html_(), model.describe()
    page = Page(html)
    check_common(model, page, text)
    perf = model.training_metrics()
    facts = page.facts("Training metrics")
    assert facts["rmse"] == g(perf["rmse"]) and facts["nobs"] == "400"
    assert len(page.section("Training metrics")["tables"]) == 1
    assert "Confusion" not in html and "Confusion" not in text
    assert "response quality" in page.header


def test_autoencoder_page(cluster, iris):
    model = dask_dl.DeepLearningAutoencoder(**FAST).fit(iris.drop(columns=["class"])).model_
    html, text = model._repr_html_(), model.describe()
    page = Page(html)
    check_common(model, page, text)
    assert page.facts("Training metrics")["mse"] == g(model.training_metrics()["mse"])
    assert "Confusion" not in html and "Confusion" not in text and "response" not in page.header


def test_cross_validated_estimator_page(cluster, iris):
    est = dask_dl.DeepLearningClassifier(**FAST, nfolds=2, max_confusion_matrix_size=2).fit(iris, "class")
    page, text = Page(est._repr_html_()), display.estimator_text(est)
    assert page.header.startswith("DeepLearningClassifier (fitted) - DeepLearningModel: multinomial")
    changed = {**CHANGED, "nfolds": "2", "max_confusion_matrix_size": "2"}
    assert page.facts("DeepLearningClassifier parameters") == changed
    summary = est.model_.cross_validation_metrics_summary()
    shown = page.section("Cross-validation metrics summary")["tables"][0]
    assert shown[0] == list(summary.columns)
    assert shown[1:] == [[r["metric"]] + [g(v) for v in r.iloc[1:]] for _, r in summary.iterrows()]
    assert_line(text, [summary.iloc[0]["metric"]] + [g(v) for v in summary.iloc[0, 1:]])
    hidden = "Confusion matrix not shown: 3 classes > max_confusion_matrix_size=2 (as H2O)"
    assert page.section("Training metrics")["lines"][-1] == hidden and hidden in text
    assert len(page.section("Training metrics")["tables"]) == 1


def test_names_are_escaped(cluster, iris):
    evil_column, evil_class = "<script>alert('c')</script>", "<script>alert(1)</script>"
    data = iris.rename(columns={"class": evil_column})
    data[evil_column] = data[evil_column].replace("Iris-setosa", evil_class)
    model = dask_dl.DeepLearningClassifier(**FAST).fit(data, evil_column).model_
    html = model._repr_html_()
    page = Page(html)
    assert "script" not in page.tags and "<script" not in html and "&lt;script&gt;" in html
    assert page.header.endswith(f"response {evil_column}")
    assert evil_class in page.section("Training metrics")["tables"][1][0]
    assert evil_class in model.describe()


def test_fitted_estimator_mimebundle(iris_model):
    sklearn = pytest.importorskip("sklearn")
    bundle = iris_model._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert bundle["text/html"] == iris_model._repr_html_()
    page = Page(bundle["text/html"])
    assert page.facts("DeepLearningClassifier parameters") == CHANGED and "Parameters" not in " ".join(page.sections)
    assert bundle["text/plain"].startswith("DeepLearningClassifier (fitted) - DeepLearningModel: multinomial")
    assert_line(bundle["text/plain"], ["hidden", "[8]"])
    with sklearn.config_context(display="text"):  # HTML turned off, as for scikit-learn's own estimators
        assert not hasattr(iris_model, "_repr_html_") and set(iris_model._repr_mimebundle_()) == {"text/plain"}
    assert repr(iris_model) == "DeepLearningClassifier(epochs=3, hidden=[8], quiet_mode=True, seed=1)"


def test_unfitted_estimator_keeps_scikit_learns_repr():
    pytest.importorskip("sklearn")
    est = dask_dl.DeepLearningRegressor(hidden=[8])
    assert repr(est) == "DeepLearningRegressor(hidden=[8])"
    bundle = est._repr_mimebundle_()
    assert bundle["text/plain"] == repr(est)
    assert "sk-" in bundle["text/html"] and display.CSS_CLASS not in bundle["text/html"]
    assert display.CSS_CLASS not in est._repr_html_()


def test_model_without_kept_metrics_and_loaded_model(iris_model, tmp_path):
    old = copy.copy(iris_model.model_)
    old.metrics_stats = {}  # a model file written before the final metrics were kept
    page = Page(old._repr_html_())
    assert page.section("Training metrics")["lines"] == ["none kept with this model"]
    assert "Validation metrics" not in page.sections
    loaded = load_model(iris_model.model_.save(str(tmp_path / "m.npz")))
    assert loaded.describe() == iris_model.model_.describe()


@pytest.mark.parametrize("value, default, same", [
    ((200, 200), [200, 200], True), (np.array([200, 200]), [200, 200], True), ([8], [200, 200], False),
    ([200], [200, 200], False), (10, 10.0, True), (np.float64(0.005), 0.005, True), (0.0051, 0.005, False),
    (float("nan"), float("nan"), True), ([[8, 4], None], None, False), (None, None, True), ([], None, False),
    ("Tanh", "Rectifier", False), ("AUTO", "AUTO", True), (np.array(3), 3, True)])
def test_same_value(value, default, same):
    assert display.same_value(value, default) is same


def test_non_default_params():
    assert display.non_default_params({"hidden": (200, 200), "epochs": 10, "l1": 1e-5, "seed": -1,
                                       "not_h2o": 3, "not_h2o_either": None}) == {"l1": 1e-5, "not_h2o": 3}
