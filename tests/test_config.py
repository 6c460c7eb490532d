from pathlib import Path

import pytest

from medcurate.config import ConfigError, config_hash, load_config


def test_defaults_validate_and_hash_is_stable():
    first, second = load_config(), load_config()
    assert config_hash(first) == config_hash(second)
    assert first.runner.name == "FnApiRunner"
    assert first.publish.output_dir == "out"


def test_yaml_then_overrides(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text("dataset: trial\ndedup:\n  threshold: 0.9\n")
    config = load_config(path, ["dedup.threshold=0.7", "ingest.inputs=[a, b]"])
    assert config.dataset == "trial"
    assert config.dedup.threshold == 0.7
    assert config.ingest.inputs == ["a", "b"]
    assert config_hash(config) != config_hash(load_config(path))


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("dedupe: {}\n", [], "dedupe"),
        ("dedup:\n  threshold: 2\n", [], "threshold"),
        ("", ["dedup.threshold"], "section.key=value"),
        ("- a list\n", [], "mapping"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text, overrides, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, overrides)


def test_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")
