import pytest

from facebench.harness.data.suite import SuiteError, load_suite


def write(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


BASE = """
[[generators]]
name = "parametric"
count = 4
[[detectors]]
name = "spectrum"
"""


def test_shipped_default_suite_loads():
    suite = load_suite()
    assert suite.name == "default"
    assert [g.label for g in suite.generators] == ["parametric", "control"]
    assert suite.detectors[0].name == "spectrum"


@pytest.mark.parametrize("name", ["default", "artifacts"])
def test_every_shipped_suite_names_real_plugins_and_parameters(name):
    from facebench.generators.artifacts import parse_fake_specs
    from facebench.harness.run.runner import check_suite

    suite = load_suite(name)
    check_suite(suite)
    for spec in suite.generators:
        parse_fake_specs(spec.params.get("artifacts", "none"))


def test_minimal_suite_gets_defaults(tmp_path):
    suite = load_suite(write(tmp_path, BASE))
    assert suite.name == "s"
    assert suite.generators[0].label == "parametric" and suite.generators[0].seed_start == 0
    assert suite.split.test_fraction == 0.5


@pytest.mark.parametrize(
    "text, message",
    [
        (BASE + "\nbogus = 1\n", "unknown key 'bogus'"),
        (BASE.replace("count = 4", "count = 4\ncuont = 5"), "generators\\[0\\]: unknown key 'cuont'"),
        (BASE.replace("count = 4", "count = -1"), "'count' must be >= 1"),
        (BASE.replace("count = 4", "count = 'four'"), "'count' must be int"),
        (BASE + "\n[split]\ntest_fraction = 1.5\n", "test_fraction must be in"),
        ("[[detectors]]\nname='spectrum'\n", "missing key 'generators'"),
        (BASE + "[[detectors]]\nname = \"spectrum\"\n", "share the label 'spectrum'"),
        ("this is = not toml [", "invalid TOML"),
    ],
)
def test_bad_suites_name_the_file_and_key(tmp_path, text, message):
    with pytest.raises(SuiteError, match=message) as info:
        load_suite(write(tmp_path, text))
    assert "s.toml" in str(info.value)


def test_missing_suite_file(tmp_path):
    with pytest.raises(SuiteError, match="no such suite file"):
        load_suite(tmp_path / "nope.toml")
    with pytest.raises(SuiteError, match="no shipped suite"):
        load_suite("nope")


def test_reals_table_is_parsed_and_checked(tmp_path):
    text = BASE.replace('[[detectors]]',
                        '[generators.reals]\nname = "folder"\ncount = 3\n[generators.reals.params]\npath = "x"\n\n[[detectors]]')
    path = tmp_path / "r.toml"
    path.write_text(text)
    (spec,) = load_suite(path).generators
    assert spec.reals.name == "folder" and spec.reals.count == 3 and spec.reals.params == {"path": "x"}
    path.write_text(text.replace('count = 3', 'count = 3\nlabel = "x"'))
    with pytest.raises(SuiteError, match=r"\[reals\]: unknown key 'label'"):
        load_suite(path)
