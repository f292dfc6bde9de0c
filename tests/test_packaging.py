"""The installed distribution's metadata. Oracle: the package itself
(mlpfast.__version__, its LICENSE file) and the rules the project keeps: no
upper bound on scikit-learn (the parity tests tell when a release changes
what mlpfast must match)."""

import os
from importlib import metadata

import pytest

import mlpfast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def dist():
    try:
        return metadata.distribution("mlpfast")
    except metadata.PackageNotFoundError:
        pytest.skip("mlpfast is not installed (an in-place build)")


def test_version_is_written_once(dist):
    assert dist.version == mlpfast.__version__


def test_license_and_requirements(dist):
    md = dist.metadata
    assert md["License-Expression"] == "BSD-3-Clause"
    assert "LICENSE" in md.get_all("License-File")
    sklearn = [r for r in md.get_all("Requires-Dist") if r.startswith("scikit-learn")]
    assert sklearn and "<" not in sklearn[0]
    assert md.get_all("Project-URL") and md.get_all("Classifier")
