"""The documentation site (issue 21, point 4): it builds with warnings treated as errors, every public
function and class has a docstring, the parameter page lists every parameter, and the guides' code
uses names that exist.

The site is mkdocs + mkdocstrings (mkdocs.yml at the repository root, pages in docs/); the API
reference comes from the docstrings and the parameter page from ``dask_dl.params.PARAMETERS``
(tools/mkdocs_hooks.py), so neither can go stale. ``python -m mkdocs serve`` previews it.
"""
from __future__ import annotations

import ast
import html
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")


def _hooks():
    spec = importlib.util.spec_from_file_location("dask_dl_mkdocs_hooks", os.path.join(ROOT, "tools", "mkdocs_hooks.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pages() -> list:
    out = []
    for folder, _, files in os.walk(DOCS):
        out += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".md")]
    return sorted(out)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built once with ``mkdocs build --strict`` into a temporary folder (never the repository)."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--clean",
                           "--config-file", os.path.join(ROOT, "mkdocs.yml"), "--site-dir", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    return proc, out, seconds


def test_the_site_builds_with_warnings_as_errors(site):
    proc, out, seconds = site
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log[-6000:]}"
    assert "WARNING" not in log, log[-6000:]
    assert not os.path.exists(os.path.join(ROOT, "site")), "the build wrote into the repository"
    for page in _pages():  # every page of docs/ is built (and, with strict validation, in the nav)
        rel = os.path.relpath(page, DOCS)[:-3]
        built = "index.html" if rel == "index" else os.path.join(rel, "index.html")
        assert os.path.exists(os.path.join(out, built)), f"{rel}.md was not built"
    print(f"docs built in {seconds:.1f} s")
    assert seconds < 120, f"the docs build took {seconds:.0f} s (budget: under 60 s on 2 cores)"


def test_the_api_reference_renders_every_documented_object(site):
    """Each ``::: dotted.path`` of docs/api/ rendered a heading with its docstring (mkdocstrings ran),
    and every public name of ``dask_dl`` has one."""
    import dask_dl
    proc, out, _ = site
    assert proc.returncode == 0
    documented = {dotted.rsplit(".", 1)[1] for _, dotted in _api_objects()}
    assert not set(dask_dl.__all__) - documented, \
        f"public names missing from docs/api/*.md: {sorted(set(dask_dl.__all__) - documented)}"
    for path, dotted in _api_objects():
        name = dotted.rsplit(".", 1)[1]
        page = os.path.join(out, "api", os.path.basename(path)[:-3], "index.html")
        text = open(page, encoding="utf-8").read()
        assert f'id="{dotted}"' in text, f"{dotted} is not rendered on {page}"
        words = " ".join(re.sub(r"`+", "", inspect.getdoc(_resolve(dotted))).split()[:4])
        shown = " ".join(html.unescape(re.sub(r"<[^>]+>", "", text)).split())
        assert words in shown, f"{name}'s docstring ({words!r}...) is not on {page}"


# the HTML elements the main part of a page is made of: any other tag there is text of a docstring or
# a page read as HTML (``p_<class>`` outside backticks), which the browser hides
_HTML_TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "details", "div", "dl", "dt", "em", "h1", "h2", "h3",
              "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "small", "span", "strong", "sub",
              "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul", "autoref"}


def test_no_page_shows_text_as_html_tags(site):
    proc, out, _ = site
    assert proc.returncode == 0
    stray = {}
    for folder, _, files in os.walk(out):
        if "index.html" in files:
            text = open(os.path.join(folder, "index.html"), encoding="utf-8").read()
            start = text.find('role="main"')
            main = text[start:text.find("<footer", start)]
            tags = set(re.findall(r"<([A-Za-z][\w-]*)", main)) - _HTML_TAGS
            if tags:
                stray[os.path.relpath(folder, out)] = sorted(tags)
    assert not stray, f"text rendered as HTML tags (quote it in backticks): {stray}"


# ----------------------------------------------------------------------------------------- docstrings
def _api_objects() -> list:
    found = []
    for page in sorted(os.listdir(os.path.join(DOCS, "api"))):
        text = open(os.path.join(DOCS, "api", page), encoding="utf-8").read()
        found += [(page, m) for m in re.findall(r"^::: ([\w.]+)", text, re.M)]
    return found


def _resolve(dotted: str):
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _public_classes() -> list:
    import dask_dl
    from dask_dl.scoring.sufficient import Performance
    classes = [dask_dl.DeepLearningClassifier, dask_dl.DeepLearningRegressor, dask_dl.DeepLearningAutoencoder,
               dask_dl.DeepLearningModel, dask_dl.GridSearch, Performance]
    return classes + [o for o in (_resolve(d) for _, d in _api_objects()) if inspect.isclass(o) and o not in classes]


def _undocumented_members(cls) -> list:
    """Public methods and properties of ``cls`` (its own and inherited) without a docstring."""
    missing = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        if isinstance(attr, (staticmethod, classmethod)):
            attr = attr.__func__
        if isinstance(attr, property):
            attr = attr.fget
        if not (inspect.isfunction(attr) or inspect.ismethoddescriptor(attr) or inspect.isbuiltin(attr)):
            continue  # data attributes
        if not (getattr(attr, "__doc__", None) or "").strip():
            missing.append(f"{cls.__name__}.{name}")
    return missing


def test_every_public_name_has_a_docstring():
    import dask_dl
    missing = [name for name in dask_dl.__all__ if not (inspect.getdoc(getattr(dask_dl, name)) or "").strip()]
    missing += [dotted for _, dotted in _api_objects() if not (inspect.getdoc(_resolve(dotted)) or "").strip()]
    for cls in _public_classes():
        missing += _undocumented_members(cls)
    assert not missing, f"public names without a docstring: {sorted(set(missing))}"


# ------------------------------------------------------------------------------------ parameter page
def _estimator_parameters() -> set:
    import dask_dl
    names = set()
    for cls in (dask_dl.DeepLearningClassifier, dask_dl.DeepLearningRegressor, dask_dl.DeepLearningAutoencoder):
        names |= set(cls().get_params())
    return names


def test_the_parameter_table_lists_every_parameter():
    from dask_dl.params import PARAMETERS
    table = _hooks().parameter_table()
    rows = set(re.findall(r"^\| `(\w+)` \|", table, re.M))
    missing = (set(PARAMETERS) | _estimator_parameters()) - rows
    assert not missing, f"parameters missing from the generated parameter page: {sorted(missing)}"
    for name, p in PARAMETERS.items():  # the meaning is the table's own text
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        assert p.doc.split()[1] in row and row.count("|") - row.count("\\|") == 5, row


def test_the_built_parameter_page_holds_the_generated_table(site):
    from dask_dl.params import PARAMETERS
    proc, out, _ = site
    assert proc.returncode == 0
    text = open(os.path.join(out, "parameters", "index.html"), encoding="utf-8").read()
    assert "parameter-table" not in text, "the hook did not replace the marker"
    cells = set(re.findall(r"<td><code>(\w+)</code></td>", text))
    missing = (set(PARAMETERS) | _estimator_parameters()) - cells
    assert not missing, f"parameters missing from the built parameter page: {sorted(missing)}"


def test_every_h2o_parameter_is_mapped():
    """Every name in H2O's parameter table is a constructor parameter or has a row of its own."""
    from dask_dl.params import PARAMETERS
    test_params = pytest.importorskip("test_params")
    path = os.path.join(ROOT, "..", "shared", "docs", "h2o-deeplearning-semantics.md")
    if not os.path.exists(path):
        pytest.skip("../shared/docs is not here")
    h2o = test_params._h2o_parameter_names()
    unmapped = h2o - set(PARAMETERS) - set(_hooks().H2O_ELSEWHERE)
    assert not unmapped, f"H2O parameters the parameter page does not map: {sorted(unmapped)}"


# ---------------------------------------------------------------------------------------- the guides
def _code(page: str) -> str:
    """The page's Python blocks, joined: a page's blocks continue one another (one script)."""
    text = open(page, encoding="utf-8").read()
    return "\n".join(re.findall(r"^```python\n(.*?)^```", text, re.M | re.S))


@pytest.mark.parametrize("page", [os.path.relpath(p, DOCS) for p in _pages() if "```python" in open(p).read()])
def test_the_code_of_every_page_compiles_and_uses_real_names(page):
    import dask_dl
    from dask_dl.params import PARAMETERS
    source = _code(os.path.join(DOCS, page))
    tree = ast.parse(source, filename=page)  # a SyntaxError names the page and line
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "dask_dl":
            if not hasattr(dask_dl, node.attr) and importlib.util.find_spec(f"dask_dl.{node.attr}") is None:
                problems.append(f"dask_dl.{node.attr} does not exist")
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("DeepLearningClassifier", "DeepLearningRegressor", "DeepLearningAutoencoder"):
                problems += [f"{name}({k.arg}=...): no such parameter" for k in node.keywords
                             if k.arg is not None and k.arg not in PARAMETERS]
    assert not problems, f"{page}: {problems}"
