"""Sphinx configuration of mlpfast's documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (the
``docs`` extra: sphinx, numpydoc; ``mlpfast.onnx``'s page imports skl2onnx
when it is installed). Nothing is fetched from the network: no intersphinx.
"""

import importlib.machinery
import os
import re
import sys

from sphinx.util.docutils import SphinxDirective

DOCS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DOCS)

# Run from the checkout, its mlpfast/ would shadow the installed package;
# it is the one to document only when its engine is built in place.
if any(os.path.exists(os.path.join(ROOT, "mlpfast", "_engine" + suffix))
       for suffix in importlib.machinery.EXTENSION_SUFFIXES):
    sys.path.insert(0, ROOT)
else:
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != ROOT]
import mlpfast  # noqa: E402

project = "mlpfast"
author = "The mlpfast developers"
copyright = "The mlpfast developers"
version = release = mlpfast.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "numpydoc"]
templates_path = ["_templates"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_theme_options = {
    "description": "scikit-learn's MLPs, compiled",
    "github_user": "mlpfast",
    "github_repo": "mlpfast",
}

# generated/mlpfast.MLPClassifier.html etc.: the pages the estimators' HTML
# repr links to (their _doc_link_template).
autosummary_generate = True
autodoc_typehints = "none"
autodoc_member_order = "groupwise"
numpydoc_show_class_members = False  # the class templates list the members
numpydoc_class_members_toctree = False

try:
    import skl2onnx  # noqa: F401
except ImportError:  # mlpfast.onnx's reference without the onnx extra
    autodoc_mock_imports = ["onnx", "skl2onnx"]


# scikit-learn's inherited docstrings (score, get_params, set_fit_request, ...)
# use roles that point into scikit-learn's own site (:ref: labels, :term:
# glossary entries); this site keeps their text.
_FOREIGN_ROLE = re.compile(r":(?:ref|term):`(?:([^`<]*?)\s*<[^`>]*>|([^`]*))`")


def _keep_foreign_role_text(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        lines[i] = _FOREIGN_ROLE.sub(lambda m: m.group(1) or m.group(2), line)


class BenchResults(SphinxDirective):
    """The latest results that ``bench/report.py --write-readme`` keeps in
    bench/README.md (between its report markers), as reStructuredText: the
    bullet lists and paragraphs as they are, the Markdown tables as tables."""

    def run(self):
        path = os.path.join(ROOT, "bench", "README.md")
        self.env.note_dependency(path)
        with open(path) as f:
            text = f.read()
        begin, end = "<!-- report:begin -->", "<!-- report:end -->"
        text = text[text.index(begin) + len(begin):text.index(end)]
        lines, table = [], []
        for line in text.strip().splitlines() + [""]:
            if line.startswith("|"):
                table.append(line)
                continue
            if table:
                lines += _csv_table(table) + [""]
                table = []
            lines.append(_inline(line))
        self.state_machine.insert_input(lines, path)
        return []


def _inline(text):
    """Markdown's `code` as reStructuredText's ``code``."""
    return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)


def _csv_table(rows):
    """A Markdown table (header, rule, rows) as a csv-table directive."""
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    del cells[1]  # the | --- | ---: | rule
    out = [".. csv-table::", "   :header-rows: 1", ""]
    for row in cells:
        row = ["\\-" if c == "-" else _inline(c) for c in row]
        out.append("   " + ", ".join('"%s"' % c.replace('"', '""') for c in row))
    return out


def setup(app):
    app.connect("autodoc-process-docstring", _keep_foreign_role_text)
    app.add_directive("bench-results", BenchResults)
