from pathlib import Path

import pytest

from app.config import load_settings
from app.errors import ConfigError


def test_defaults_and_derived_paths(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.data_dir == Path("data")
    assert s.resolved_database_url.endswith("data/shop.db")
    assert s.resolved_chroma_path == Path("data/chroma")


def test_env_overrides_toml_and_kwargs_override_env(monkeypatch, tmp_path):
    toml = tmp_path / "shopdesk.toml"
    toml.write_text('[shopdesk]\nport = 9000\nintent_confidence_min = 0.6\n')
    monkeypatch.setenv("SHOPDESK_PORT", "9100")
    s = load_settings(toml)
    assert s.port == 9100 and s.intent_confidence_min == 0.6
    assert load_settings(toml, port=9200).port == 9200


def test_unknown_toml_key_is_an_error(tmp_path):
    toml = tmp_path / "x.toml"
    toml.write_text("[shopdesk]\nprot = 1\n")
    with pytest.raises(ConfigError, match="unknown settings"):
        load_settings(toml)


def test_bad_values_say_which_setting(monkeypatch):
    monkeypatch.setenv("SHOPDESK_PORT", "eighty")
    with pytest.raises(ConfigError, match="port"):
        load_settings()
    monkeypatch.delenv("SHOPDESK_PORT")
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        load_settings(generator="openai")
