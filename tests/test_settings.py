from __future__ import annotations

from patron.settings import Settings


def test_secrets_can_come_from_files(tmp_path, monkeypatch):
    secret = tmp_path / "secret_key"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("PATRON_SECRET_KEY_FILE", str(secret))
    monkeypatch.setenv("PATRON_DATABASE_URL", "sqlite:///elsewhere.db")
    settings = Settings()
    assert settings.secret_key == "from-a-file"
    assert settings.database_url == "sqlite:///elsewhere.db"


def test_the_variable_itself_wins_over_its_file(tmp_path, monkeypatch):
    secret = tmp_path / "secret_key"
    secret.write_text("from-a-file")
    monkeypatch.setenv("PATRON_SECRET_KEY_FILE", str(secret))
    monkeypatch.setenv("PATRON_SECRET_KEY", "from-the-environment")
    assert Settings().secret_key == "from-the-environment"


def test_without_a_secret_each_process_gets_a_random_one(monkeypatch):
    monkeypatch.delenv("PATRON_SECRET_KEY", raising=False)
    monkeypatch.delenv("PATRON_SECRET_KEY_FILE", raising=False)
    a, b = Settings().secret_key, Settings().secret_key
    assert len(a) >= 32 and a != b
