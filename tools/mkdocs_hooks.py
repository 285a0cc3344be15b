"""mkdocs hook: the parameter page is generated from ``dask_dl.params.PARAMETERS`` at every build.

``docs/parameters.md`` holds the marker ``<!-- parameter-table -->``; ``on_page_markdown`` replaces it
with one table row per parameter (name, default, what it means in dask_dl, which estimators take
it) and a second table for H2O's parameters that are not constructor parameters. Nothing is
written to disk, so the page cannot go stale: a parameter added to the table is on the next build.
"""
from __future__ import annotations

import html

MARKER = "<!-- parameter-table -->"

# H2O Deep Learning parameters that are not estimator parameters in dask_dl, and what replaces them
# (names as in H2O's parameter table; tests/test_docs.py checks that, with the constructor
# parameters, they cover every name of that table when ../shared/docs is there).
H2O_ELSEWHERE = {
    "training_frame": "`fit(X, y)`: X (pandas or dask DataFrame, numpy or dask array); "
                      "`dask_dl.read_parquet` / `read_csv` read it where it lives",
    "response_column": "`fit(X, y)`: y, a column name of X, a Series or an array",
    "validation_frame": "`fit(..., validation_data=...)`: an (X, y) pair or a frame holding the response column",
    "autoencoder": "`DeepLearningAutoencoder` (`autoencoder=True` in H2O)",
    "col_major": "not a parameter (deprecated in H2O, where True is an error)",
    "custom_metric_func": "not supported: `model.model_performance(X, y)` returns H2O's metrics and tables, "
                          "and `predict_proba` / `predict` the predictions to compute your own",
    "gainslift_bins": "not a parameter: `Performance.gains_lift()` has H2O's default 16 groups (top 1%, 2%, ... 100%)",
}

ESTIMATORS = ("DeepLearningClassifier", "DeepLearningRegressor", "DeepLearningAutoencoder")


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: no HTML, no table or emphasis syntax."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    for ch in ("\\", "|", "*", "[", "]"):
        text = text.replace(ch, "\\" + ch)
    return text


def _default(value) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def parameter_rows() -> list:
    """(name, default, meaning, estimators) for every parameter in PARAMETERS, in its order."""
    import dask_dl
    from dask_dl import params as P
    takes = {name: getattr(dask_dl, name)().get_params() for name in ESTIMATORS}
    rows = []
    for name, p in P.PARAMETERS.items():
        who = [e.replace("DeepLearning", "") for e in ESTIMATORS if name in takes[e]]
        rows.append((name, p.default, p.doc, who))
    extra = sorted(set().union(*map(set, takes.values())) - set(P.PARAMETERS))
    for name in extra:  # an estimator parameter outside the table would still be listed
        who = [e.replace("DeepLearning", "") for e in ESTIMATORS if name in takes[e]]
        rows.append((name, None, "(not in dask_dl.params.PARAMETERS)", who))
    return rows


def parameter_table() -> str:
    """The generated Markdown: the constructor parameters, then H2O's parameters found elsewhere."""
    lines = [f"All {len(parameter_rows())} constructor parameters, in the order of `dask_dl.params.PARAMETERS`.",
             "",
             "| parameter | default | meaning in dask_dl | estimators |",
             "|---|---|---|---|"]
    for name, default, doc, who in parameter_rows():
        meaning = doc[:1].upper() + doc[1:]
        lines.append(f"| `{name}` | {_default(default)} | {_cell(meaning)}. | {', '.join(who) or '—'} |")
    lines += ["", "## H2O parameters that are not constructor parameters", "",
              "| H2O parameter | in dask_dl |", "|---|---|"]
    lines += [f"| `{name}` | {text} |" for name, text in H2O_ELSEWHERE.items()]
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown: str, page, config, files):
    """mkdocs event: fill the parameter page's marker with the generated tables."""
    if MARKER in markdown:
        return markdown.replace(MARKER, parameter_table())
    return markdown
