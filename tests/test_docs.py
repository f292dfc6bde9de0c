"""The documentation: the Sphinx site builds without a warning, every
Example in the public docstrings runs and prints what it shows, and so do
the user guide's examples.

Oracles: Sphinx's own warnings (turned into errors by ``-W``), the estimators'
``_get_doc_link()`` (the HTML repr's link must name a page the build wrote),
and doctest's comparison of each example's output with the docstring's, with
every Python warning turned into an error.
"""

import doctest
import importlib
import inspect
import os
import subprocess
import sys
import warnings

import pytest

import mlpfast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")


def test_sphinx_builds_without_warnings_and_the_repr_links_resolve(tmp_path):
    """``sphinx -W --keep-going -b html`` succeeds, and the API reference has
    a page at the path each estimator's HTML repr links to."""
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    out = tmp_path / "html"
    # A separate process: Sphinx registers its extensions process-wide. -W
    # turns Sphinx's warnings into errors; Python's own (a library's
    # deprecation on import) are not the documentation's.
    # the mlpfast these tests import is the one documented
    path = os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(mlpfast.__file__)),
                                         os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONWARNINGS="", MPLBACKEND="Agg", PYTHONPATH=path)
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), DOCS, str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for estimator in (mlpfast.MLPClassifier(), mlpfast.MLPRegressor()):
        link = estimator._get_doc_link()
        assert link in estimator._repr_html_()
        page = link.split("/en/latest/", 1)[1]
        assert page == f"generated/mlpfast.{type(estimator).__name__}.html"
        assert (out / page).is_file(), page
    for page in ("index.html", "install.html", "quickstart.html", "threads.html",
                 "beyond.html", "onnx.html", "persistence.html", "scaling.html",
                 "benchmarks.html", "api.html"):
        assert (out / page).is_file(), page
    # api.rst spells out SKOPS_TRUSTED_TYPES, which must follow the package
    api = (out / "api.html").read_text()
    for name in mlpfast.SKOPS_TRUSTED_TYPES:
        assert f"'{name}'" in api.replace("&#39;", "'"), name


def _public_objects():
    """(name, object, the modules it needs) for everything the API
    reference documents: the package, its public names and their public
    members (inherited ones are scikit-learn's), and mlpfast.onnx."""
    objects = [("mlpfast", mlpfast, None)]
    needs = {"LossCurveDisplay": ("matplotlib",)}
    for name in mlpfast.__all__:
        obj = getattr(mlpfast, name)
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        objects.append((f"mlpfast.{name}", obj, needs.get(name)))
        if inspect.isclass(obj):
            members = {m for klass in obj.__mro__ if klass.__module__.startswith("mlpfast")
                       for m in vars(klass) if not m.startswith("_")}
            for member in sorted(members):
                objects.append((f"mlpfast.{name}.{member}", getattr(obj, member),
                                needs.get(name)))
    onnx = ("skl2onnx", "onnxruntime")
    objects.append(("mlpfast.onnx", "mlpfast.onnx", onnx))
    for name in ("to_onnx", "register_converters"):
        objects.append((f"mlpfast.onnx.{name}", f"mlpfast.onnx:{name}", onnx))
    return objects


# Public entry points whose docstring must have a runnable example (STYLE.md);
# the methods scikit-learn's API defines for them are listed too.
MUST_HAVE_EXAMPLES = {
    "mlpfast.MLPClassifier", "mlpfast.MLPClassifier.fit", "mlpfast.MLPClassifier.partial_fit",
    "mlpfast.MLPClassifier.predict", "mlpfast.MLPClassifier.predict_proba",
    "mlpfast.MLPClassifier.predict_log_proba", "mlpfast.MLPClassifier.decision_function",
    "mlpfast.MLPRegressor", "mlpfast.MLPRegressor.fit", "mlpfast.MLPRegressor.partial_fit",
    "mlpfast.MLPRegressor.predict",
    "mlpfast.LossCurveDisplay", "mlpfast.LossCurveDisplay.from_estimator",
    "mlpfast.LossCurveDisplay.plot",
    "mlpfast.check_gradient", "mlpfast.show_config", "mlpfast.InconsistentVersionWarning",
    "mlpfast.onnx", "mlpfast.onnx.to_onnx", "mlpfast.onnx.register_converters",
}


def test_every_entry_point_that_needs_an_example_is_collected():
    """The list above names only objects the doctest run below collects."""
    assert MUST_HAVE_EXAMPLES <= {name for name, _, _ in _public_objects()}


@pytest.mark.parametrize("name, obj, needs", _public_objects(),
                         ids=[name for name, _, _ in _public_objects()])
def test_docstring_examples_run_without_warnings(name, obj, needs):
    """Each public docstring's Examples give the output they show, with
    warnings as errors (matplotlib on its Agg backend)."""
    for module in needs or ():
        pytest.importorskip(module)
    plots = "matplotlib" in (needs or ())
    if plots:
        import matplotlib

        matplotlib.use("Agg")
    if isinstance(obj, str):  # a module, or module:attribute, needing an optional extra
        module, _, attr = obj.partition(":")
        obj = importlib.import_module(module)
        obj = getattr(obj, attr) if attr else obj
    finder = doctest.DocTestFinder(recurse=False)
    tests = [t for t in finder.find(obj, name, module=False, globs={}) if t.examples]
    if name in MUST_HAVE_EXAMPLES:
        assert tests, f"{name}'s docstring has no example"
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for test in tests:
                runner.run(test, out=report.append)
    finally:
        if plots:
            import matplotlib.pyplot as plt

            plt.close("all")
    results = runner.summarize(verbose=False)
    assert results.failed == 0, "".join(report)


def _page_code(page):
    """A user-guide page's Python blocks, in order (one session: later
    blocks use earlier ones' names), and the output it shows: the comments
    after its print calls, and its text blocks."""
    import re
    import textwrap

    with open(os.path.join(DOCS, page)) as f:
        text = f.read()
    blocks = re.findall(r"\.\. code-block:: (python|text)\n\n((?:   .*\n|\n)+)", text)
    code = "\n".join(textwrap.dedent(body) for kind, body in blocks if kind == "python")
    shown = [m.group(1) for m in re.finditer(r"print\(.*\)\s+# (.+)", code)]
    for kind, body in blocks:
        if kind == "text":
            shown += textwrap.dedent(body).strip().splitlines()
    return code, shown


@pytest.mark.parametrize("page", ["quickstart.rst", "beyond.rst", "onnx.rst",
                                  "persistence.rst"])
def test_user_guide_examples_run_and_print_what_they_show(page, tmp_path, monkeypatch):
    """Each page's examples run as one session, with every Python warning an
    error, and print what the page shows (oracle: the page's own text), in
    order."""
    import contextlib
    import io

    pytest.importorskip("matplotlib")
    pytest.importorskip("skops")
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("rich")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)  # the examples write model files
    code, shown = _page_code(page)
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # plt.show() on the Agg backend, where there is nothing to show
        warnings.filterwarnings("ignore", message=".*non-interactive.*")
        with contextlib.redirect_stdout(out):
            exec(compile(code, page, "exec"), {"__name__": "docs_example"})
    printed = [line.strip() for line in out.getvalue().splitlines()]
    remaining = iter(printed)
    missing = [line for line in shown if line.strip() not in remaining]
    assert not missing, (missing, printed)
