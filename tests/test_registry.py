import subprocess
import sys
import textwrap

import pytest

from facebench.harness.contracts import registry
from facebench.harness.contracts.registry import PluginError

PLUGIN_PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "facebench-tinyplugin"
version = "0.3.0"

[tool.setuptools]
packages = ["tinyplugin"]

[project.entry-points."facebench.detectors"]
tiny_mean = "tinyplugin.good:MeanDetector"
tiny_broken = "tinyplugin.broken:Nope"
"""

GOOD = """
import numpy as np

class MeanDetector:
    name = "tiny_mean"
    version = "0.3.0"
    requires_fit = False

    def __init__(self, scale: float = 1.0):
        self.scale = scale
        self.device = "cpu"
        self.batch_size = 8

    def fit(self, images, labels):
        pass

    def score(self, images):
        return np.clip(images.mean(axis=(1, 2, 3)) / 255.0 * self.scale, 0, 1)
"""


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """A separate tiny distribution, really installed by pip into its own site dir."""
    root = tmp_path_factory.mktemp("plugin")
    project = root / "project"
    (project / "tinyplugin").mkdir(parents=True)
    (project / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (project / "tinyplugin" / "__init__.py").write_text("")
    (project / "tinyplugin" / "good.py").write_text(textwrap.dedent(GOOD))
    (project / "tinyplugin" / "broken.py").write_text("import a_module_that_does_not_exist\n")
    site = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(project)],
        check=True,
    )
    return site


@pytest.fixture
def with_plugin(plugin_site, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    yield
    for name in [m for m in sys.modules if m.startswith("tinyplugin")]:
        del sys.modules[name]


def test_builtins_are_listed_without_importing():
    assert registry.available("generator")["parametric"].origin == "builtin"
    assert registry.available("detector")["spectrum"].target == "facebench.detectors.spectrum:SpectrumDetector"


def test_entry_point_plugin_is_found_and_works(with_plugin):
    info = registry.available("detector")["tiny_mean"]
    assert info.origin == "entry point (facebench-tinyplugin)"
    detector = registry.create("detector", "tiny_mean", scale=2.0)
    import numpy as np

    scores = detector.score(np.full((2, 4, 4, 3), 51, np.uint8))
    assert scores.tolist() == pytest.approx([0.4, 0.4])


def test_broken_plugin_is_reported_and_does_not_break_others(with_plugin):
    statuses = {s.info.name: s for s in registry.inspect_all()}
    assert "a_module_that_does_not_exist" in statuses["tiny_broken"].error
    assert statuses["tiny_mean"].error is None
    assert statuses["spectrum"].error is None and statuses["spectrum"].version
    with pytest.raises(PluginError, match="failed to import"):
        registry.create("detector", "tiny_broken")


def test_unknown_name_gets_did_you_mean():
    with pytest.raises(PluginError, match="did you mean 'spectrum'"):
        registry.load("detector", "spectrun")
    with pytest.raises(PluginError, match="available"):
        registry.load("detector", "zzzzzzzz")


def test_unknown_parameter_gets_did_you_mean():
    with pytest.raises(PluginError, match="no parameter 'nbins'; did you mean 'n_bins'"):
        registry.create("detector", "spectrum", nbins=3)


def test_bad_parameter_value_is_a_plugin_error():
    with pytest.raises(PluginError, match="n_bins must be >= 4"):
        registry.create("detector", "spectrum", n_bins=1)


def test_every_builtin_detector_declares_probability_scores():
    from facebench.harness.contracts import registry

    for name in registry.BUILTINS["detector"]:
        assert registry.load("detector", name).score_range == (0.0, 1.0), name
