"""A trained model or a fitted estimator as a page: Jupyter HTML (``_repr_html_``) and plain text.

In scikit-learn's style: self-contained HTML (one inline ``<style>`` scoped by the ``dask-dl-repr``
class, no JavaScript), every value escaped, a collapsible ``<details>`` per section: the parameters
that differ from H2O's defaults, the neuron layers, the run, the last scoring-history row, the
training / validation metrics with the confusion matrix, the cross-validation summary. The page is
built once as sections of text lines and tables (``model_sections``), then rendered as HTML or
text, so both renderings state the same facts.
"""
from __future__ import annotations

import html
import math
import numbers
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import pandas as pd

from .params import PARAMETERS

CSS_CLASS = "dask-dl-repr"
CLASSIFIER_KINDS = ("binomial", "multinomial")
STYLE = (f"<style>"
         f".{CSS_CLASS}{{font-size:0.9em;line-height:1.4;}}"
         f".{CSS_CLASS} .{CSS_CLASS}-header{{font-weight:bold;margin:0 0 .3em 0;}}"
         f".{CSS_CLASS} details{{margin:.25em 0;padding:.2em .6em;border:1px solid rgba(128,128,128,.45);"
         f"border-radius:4px;}}"
         f".{CSS_CLASS} summary{{cursor:pointer;font-weight:bold;}}"
         f".{CSS_CLASS} table{{border-collapse:collapse;margin:.3em 0;}}"
         f".{CSS_CLASS} th,.{CSS_CLASS} td{{padding:.1em .6em;text-align:right;"
         f"border-bottom:1px solid rgba(128,128,128,.25);}}"
         f".{CSS_CLASS} p{{margin:.3em 0;}}"
         f"</style>")

_PARAM_REPR = reprlib.Repr()
_PARAM_REPR.maxstring, _PARAM_REPR.maxother, _PARAM_REPR.maxlist = 80, 80, 12

Block = Union[str, pd.DataFrame]  # a line of text or a table
_SEQUENCES = (list, tuple, np.ndarray)


@dataclass
class Section:
    """One collapsible part of the page: a title and its lines and tables."""
    title: str
    blocks: list
    open: bool = True


# ------------------------------------------------------------------------------ values
def format_value(v: Any) -> str:
    """How every table cell reads: floats with 6 significant digits (H2O prints 5-6), NaN blank."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        return "" if math.isnan(float(v)) else f"{float(v):.6g}"
    return "" if v is None else str(v)


def same_value(value: Any, default: Any) -> bool:
    """Whether a parameter value equals its default: lists, tuples and arrays element by element
    (``hidden=(200, 200)`` is the default), NaN equal to NaN, anything uncomparable different."""
    value, default = (v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v for v in (value, default))
    if value is default:
        return True
    if value is None or default is None:
        return False
    if isinstance(value, _SEQUENCES) or isinstance(default, _SEQUENCES):
        return (isinstance(value, _SEQUENCES) and isinstance(default, _SEQUENCES) and len(value) == len(default)
                and all(map(same_value, value, default)))
    if isinstance(value, numbers.Real) and isinstance(default, numbers.Real):
        return float(value) == float(default) or (math.isnan(value) and math.isnan(default))
    try:
        return bool(value == default)
    except (TypeError, ValueError):  # an object whose == is not a truth value
        return False


def non_default_params(params: Mapping) -> dict:
    """The parameters that differ from H2O's defaults (``params.PARAMETERS``); a name without a
    known default counts as differing unless it is None."""
    return {k: v for k, v in params.items()
            if (not same_value(v, PARAMETERS[k].default) if k in PARAMETERS else v is not None)}


def _param_text(v: Any) -> str:
    """A parameter value as the user would type it (strings bare, long values shortened)."""
    if isinstance(v, np.ndarray) and v.size <= 12:
        v = v.tolist()
    return v if isinstance(v, str) else _PARAM_REPR.repr(v)


def _facts(values: Mapping) -> pd.DataFrame:
    """A name -> value mapping as a one-column table indexed by name."""
    return pd.DataFrame({"value": [format_value(v) for v in values.values()]},
                        index=pd.Index([str(k) for k in values], dtype=object))


# ------------------------------------------------------------------------------ metrics
def final_metrics(model: Any, which: str):
    """The model's final "training" or "validation" metrics (a scoring.sufficient.Performance), or
    None where it kept none."""
    return getattr(model, f"{which}_metrics")()


def _confusion_blocks(model: Any, perf) -> list:
    """The confusion matrix, as H2O shows it: classifiers only, and only up to
    ``max_confusion_matrix_size`` classes."""
    if model.kind not in CLASSIFIER_KINDS:
        return []
    k, limit = len(model.classes), int(model.params.get("max_confusion_matrix_size", 20))
    if k > limit:
        return [f"Confusion matrix not shown: {k} classes > max_confusion_matrix_size={limit} (as H2O)"]
    where = " at the max-F1 threshold" if model.kind == "binomial" else ""
    return [f"Confusion matrix{where} (rows: actual, columns: predicted):", perf.confusion_matrix()]


def _metrics_section(model: Any, which: str) -> Section | None:
    perf = final_metrics(model, which)
    if perf is None:
        return None if which == "validation" else Section("Training metrics", ["none kept with this model"])
    numbers_only = {k: v for k, v in perf.items() if isinstance(v, numbers.Real)}
    head = [f"computed on {model.training_metrics_on()}"] if which == "training" else []
    return Section(f"{which.capitalize()} metrics", head + [_facts(numbers_only)] + _confusion_blocks(model, perf))


def _cv_section(model: Any) -> Section | None:
    if getattr(model, "cv", None) is None:
        return None
    try:
        summary = model.cross_validation_metrics_summary()
    except ValueError:
        return None
    return Section("Cross-validation metrics summary", [summary])


# ------------------------------------------------------------------------------ sections
def _params_section(params: Mapping, title: str) -> Section:
    changed = non_default_params(params)
    if not changed:
        return Section(title, ["every parameter at H2O's default"])
    return Section(title, [_facts({k: _param_text(v) for k, v in changed.items()})])


def _run_section(model: Any) -> Section:
    r = model.run
    if not r:
        return Section("Run", ["no run record"])
    facts = {k: r[k] for k in ("epochs", "samples", "iterations", "run_seconds", "stop_reason") if k in r}
    return Section("Run", [_facts(facts)])


def _last_scoring_section(model: Any) -> Section:
    hist = model.scoring_history()
    if len(hist) <= 1:
        return Section("Last scoring", ["not scored (only the untrained row 0)"])
    return Section(f"Last scoring (scoring history row {len(hist) - 1})", [_facts(hist.iloc[-1].to_dict())])


def model_header(model: Any) -> str:
    """One line: what the model is."""
    response = model.info.response_name
    target = f", response {response}" if response is not None and model.kind != "autoencoder" else ""
    return (f"DeepLearningModel: {model.kind}, distribution {model.distribution}, loss {model.loss}, "
            f"units {list(model.layout.units)}{target}")


def model_sections(model: Any, params: bool = True) -> list:
    """The page's sections, in order; ``params=False`` leaves the parameters out (an estimator
    shows its own)."""
    found = [_params_section(model.params, "Parameters (differing from H2O's defaults)")] if params else []
    found += [Section("Status of Neuron Layers", [model.layer_table()], open=False), _run_section(model),
              _last_scoring_section(model), _metrics_section(model, "training"),
              _metrics_section(model, "validation"), _cv_section(model)]
    return [s for s in found if s is not None]


def estimator_sections(est: Any) -> list:
    """A fitted estimator: its own parameters, then its model's page."""
    title = f"{type(est).__name__} parameters (differing from H2O's defaults)"
    return [_params_section(est.get_params(), title)] + model_sections(est.model_, params=False)


# ------------------------------------------------------------------------------ rendering
def _cells(df: pd.DataFrame) -> pd.DataFrame:
    return df.map(format_value)


def _shows_index(df: pd.DataFrame) -> bool:
    return not isinstance(df.index, pd.RangeIndex)


def _shows_header(df: pd.DataFrame) -> bool:
    """A name -> value table (one column, named rows) reads better without its column header."""
    return not (df.shape[1] == 1 and _shows_index(df))


def _html_block(block: Block) -> str:
    if isinstance(block, pd.DataFrame):
        return _cells(block).to_html(border=0, index=_shows_index(block), header=_shows_header(block), escape=True)
    return f"<p>{html.escape(str(block))}</p>"


def render_html(header: str, sections: list) -> str:
    """Self-contained HTML: the style, the header, a ``<details>`` per section."""
    parts = [f'<div class="{CSS_CLASS}">', STYLE, f'<div class="{CSS_CLASS}-header">{html.escape(header)}</div>']
    for s in sections:
        parts.append(f"<details{' open' if s.open else ''}><summary>{html.escape(s.title)}</summary>")
        parts += [_html_block(b) for b in s.blocks]
        parts.append("</details>")
    parts.append("</div>")
    return "\n".join(parts)


def _text_block(block: Block) -> str:
    if isinstance(block, pd.DataFrame):
        return _cells(block).to_string(index=_shows_index(block), header=_shows_header(block))
    return str(block)


def render_text(header: str, sections: list) -> str:
    """The same page for terminals: titled sections of lines and tables."""
    lines = [header]
    for s in sections:
        lines += ["", s.title, "-" * len(s.title)]
        lines += [_text_block(b) for b in s.blocks]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ entry points
def model_html(model: Any) -> str:
    return render_html(model_header(model), model_sections(model))


def model_text(model: Any) -> str:
    return render_text(model_header(model), model_sections(model))


def _estimator_header(est: Any) -> str:
    return f"{type(est).__name__} (fitted) - {model_header(est.model_)}"


def estimator_html(est: Any) -> str:
    return render_html(_estimator_header(est), estimator_sections(est))


def estimator_text(est: Any) -> str:
    return render_text(_estimator_header(est), estimator_sections(est))


def wants_html() -> bool:
    """scikit-learn's ``set_config(display="text")`` turns HTML off, as for its own estimators."""
    try:
        from sklearn import get_config
    except ImportError:  # pragma: no cover - exercised only without scikit-learn
        return True
    return get_config().get("display", "diagram") == "diagram"


def estimator_bundle(est: Any) -> dict:
    """A fitted estimator's Jupyter mime bundle: the text page, and the HTML page unless turned off."""
    bundle = {"text/plain": estimator_text(est)}
    if wants_html():
        bundle["text/html"] = estimator_html(est)
    return bundle
