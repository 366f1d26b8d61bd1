from warden.runtime.settings import Settings


def test_conventional_connection_variables_are_read_as_they_are(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/warden")
    monkeypatch.setenv("WARDEN_HTTP_PORT", "9000")
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.database_url == "postgresql://u@db/warden"
    assert settings.http_port == 9000
    assert settings.group_id("intake") == "warden-intake"


def test_prefixed_names_work_too(monkeypatch):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("WARDEN_KAFKA_BOOTSTRAP_SERVERS", "k2:9092")
    assert Settings().kafka_bootstrap_servers == "k2:9092"


def test_settings_from_the_environment_are_parsed_once_per_distinct_environment(monkeypatch):
    from warden.runtime.settings import from_environment

    monkeypatch.setenv("WARDEN_HTTP_PORT", "9001")
    first = from_environment(Settings)
    assert first.http_port == 9001
    assert from_environment(Settings) is first  # same variables: the same parse
    monkeypatch.setenv("WARDEN_HTTP_PORT", "9002")
    assert from_environment(Settings).http_port == 9002  # a changed variable is read again
    monkeypatch.setenv("WARDEN_HTTP_PORT", "9001")
    assert from_environment(Settings).http_port == 9001
