"""``[store]``: SQLite by default, PostgreSQL by ``url``, its password never in the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finappd.config import load_settings
from finappd.errors import ConfigError
from finappd.store import Store
from finappd.store.backend import store_for
from finappd.store.pg import PgStore

URL = "postgresql://finappd@db.example:5432/finance"


def write(tmp_path: Path, store: str) -> Path:
    path = tmp_path / "finappd.toml"
    path.write_text(f"[store]\n{store}\n", encoding="utf-8")
    return path


def test_sqlite_is_the_default_and_url_selects_postgresql(tmp_path: Path) -> None:
    default = load_settings(write(tmp_path, "")).store
    assert default.url is None
    assert type(store_for(default)) is Store
    store = load_settings(write(tmp_path, f'url = "{URL}"')).store
    assert (store.url, store.password) == (URL, None)
    assert type(store_for(store)) is PgStore


@pytest.mark.parametrize(
    ("line", "key", "says"),
    [
        ('url = "mysql://db/finance"', "store.url", "postgresql://"),
        ('url = "postgresql://finappd:hunter2@db/finance"', "store.url", "password"),
        ('url = "postgresql://db/finance?password=hunter2"', "store.url", "password"),
        ('password = "hunter2"', "store.password", "CREDENTIALS_DIRECTORY"),
    ],
)
def test_a_password_in_the_config_file_is_refused_without_echoing_it(
    tmp_path: Path, line: str, key: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, line))
    assert caught.value.key == key
    assert says in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("source", ["credentials", "environment"])
def test_the_password_comes_from_credentials_or_the_environment_and_stays_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    if source == "credentials":
        creds = tmp_path / "creds"
        creds.mkdir()
        (creds / "store_password").write_text("sentinel-pw-42\n", encoding="utf-8")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    else:
        monkeypatch.setenv("FINAPPD_STORE__PASSWORD", "sentinel-pw-42")
    settings = load_settings(write(tmp_path, f'url = "{URL}"'))
    assert settings.store.password is not None
    assert settings.store.password.get_secret_value() == "sentinel-pw-42"
    assert settings.store.url == URL  # the file's other store keys are kept beside it
    assert "sentinel-pw-42" not in json.dumps(settings.masked(), default=str)
    assert "sentinel-pw-42" not in repr(settings)


def test_max_concurrency_total_needs_a_shared_store(tmp_path: Path) -> None:
    path = tmp_path / "finappd.toml"
    path.write_text("[providers.yahoo]\nmax_concurrency_total = 4\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "providers.yahoo.max_concurrency_total"
    path.write_text(f'[store]\nurl = "{URL}"\n[providers.yahoo]\nmax_concurrency_total = 4\n')
    assert load_settings(path).providers["yahoo"].max_concurrency_total == 4
