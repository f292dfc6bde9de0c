"""The README's examples run and print no warning.

Oracles: the output the README shows for its first example; the score the
"Beyond scikit-learn" example prints; Python's warnings, turned into errors.
(tests/test_dask.py runs the "More than one machine" example's search on its
own cluster and checks the output the README shows.)
"""

import contextlib
import io
import os
import re
import warnings

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _section(title):
    with open(README) as f:
        text = f.read()
    text = text[text.index(title):]
    return text[:text.index("\n## ", len(title))]


def _python_blocks(section="## Beyond scikit-learn"):
    return re.findall(r"```python\n(.*?)```", _section(section), re.S)


def _run(code):
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with contextlib.redirect_stdout(out):
            exec(compile(code, README, "exec"), {})
    return out.getvalue()


def test_readme_first_example_prints_what_the_readme_shows():
    text = _section("# mlpfast")
    code, shown = re.findall(r"```(?:python)?\n(.*?)```", text, re.S)[:2]
    assert _run(code) == shown


@pytest.mark.parametrize("code", _python_blocks())
def test_readme_example_runs_without_warnings(code):
    score = float(_run(code).split()[-1])
    assert 0.9 < score <= 1.0
