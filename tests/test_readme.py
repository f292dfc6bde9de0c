"""The README's "Beyond scikit-learn" example runs, and prints no warning.

Oracle: the example's own output (a score it prints) and Python's warnings,
turned into errors.
"""

import contextlib
import io
import os
import re
import warnings

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _python_blocks(section="## Beyond scikit-learn"):
    with open(README) as f:
        text = f.read()
    text = text[text.index(section):]
    text = text[:text.index("\n## ", len(section))]
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.parametrize("code", _python_blocks())
def test_readme_example_runs_without_warnings(code):
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with contextlib.redirect_stdout(out):
            exec(compile(code, README, "exec"), {})
    score = float(out.getvalue().split()[-1])
    assert 0.9 < score <= 1.0
