from pathlib import Path

import pytest

from vmflow.settings import Settings, get_settings


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("VMFLOW_HOME", "VMFLOW_API_PORT", "VMFLOW_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    s = Settings()
    assert s.api_port == 8774 and s.temporal_address == "127.0.0.1:7233"
    assert s.temporal_ui_port == 8233
    assert s.db_url == f"sqlite:///{s.home / 'vmflow.db'}"
    assert s.admin_token_file == s.home / "admin-token"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VMFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("VMFLOW_DATABASE_URL", "postgresql+psycopg://u:p@h/db")
    monkeypatch.setenv("VMFLOW_HOST_TRAITS", "HW_GPU, CUSTOM_FAST")
    s = Settings()
    assert s.home == tmp_path and s.db_url.startswith("postgresql")
    assert s.traits == ["HW_GPU", "CUSTOM_FAST"]
    assert s.host_dir("h1") == tmp_path / "hosts" / "h1"


def test_get_settings_is_lazy_and_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("VMFLOW_HOME", str(tmp_path))
    try:
        assert get_settings() is get_settings()
        assert get_settings().home == tmp_path
    finally:
        get_settings.cache_clear()
