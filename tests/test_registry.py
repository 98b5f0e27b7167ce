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

    for name in registry.names("detector"):
        assert registry.load("detector", name).score_range == (0.0, 1.0), name


@pytest.mark.parametrize("kind", registry.KINDS)
def test_every_builtin_of_every_kind_loads_and_declares_its_name_once(kind):
    """The registry lists built-ins by target only: the name is the class's, read from its source."""
    import importlib.util

    assert len(set(registry.names(kind))) == len(registry.BUILTINS[kind]) > 0
    for target in registry.BUILTINS[kind]:
        read = registry.static_attributes(target)
        assert read is not None and isinstance(read.get("name"), str), target
        if target.endswith(":RayExecutor") and importlib.util.find_spec("ray") is None:
            continue
        cls = registry.load(kind, read["name"])
        assert f"{cls.__module__}:{cls.__qualname__}".endswith(target.partition(":")[2])
        assert cls.name == read["name"], target


def test_register_refuses_a_second_plug_in_with_a_builtin_name(monkeypatch):
    monkeypatch.setitem(registry.BUILTINS, "detector", registry.BUILTINS["detector"])
    with pytest.raises(PluginError, match="already named 'spectrum'"):
        registry.register("detector", f"{__name__}:SpectrumTwin")


class SpectrumTwin:
    name = "spectrum"


def test_detectors_declare_the_artifacts_they_target():
    targets = registry.targets("detector")
    assert targets["spectrum"] == ("upsampling",) and targets["hf_falloff"] == ("hf_smooth", "hf_excess")
    assert "cnn" not in targets and "command" not in targets  # learned and external detectors claim no cue
    for name, artifacts in targets.items():
        assert registry.load("detector", name).targets == artifacts
        assert set(artifacts) <= set(registry.names("artifact")), name


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(PluginError, match=r"no parameter 'zzz' \(its parameters: n_bins, .*batch_size\)"):
        registry.create("detector", "spectrum", zzz=3)


@pytest.mark.parametrize(("text", "annotation", "default", "value"), [
    ("20", int, 1, 20), ("0.7", float, 1.0, 0.7), ("true", bool, False, True), ("true", str, "", "true"),
    ("2024", "x", 0, 2024), ("a face", str | None, None, "a face"), ("0.1,0", str, "0,0", "0.1,0"),
    ("[0.1, 0]", list[float], None, [0.1, 0]), ("7", __import__("inspect").Parameter.empty, 1.5, 7.0),
    ("10", float | None, None, 10.0), ("3", int | None, None, 3),
])
def test_command_line_values_follow_the_parameter_type(text, annotation, default, value):
    read = registry.value_from_text(text, annotation, default)
    assert read == value and type(read) is type(value)
