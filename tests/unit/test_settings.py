"""Settings: PANIC_* environment parsing, dev secrets policy, secrets kept out of repr."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from config.settings import (
    DEV_SECRETS,
    ConsoleSettings,
    JwtAlgorithm,
    Profile,
    Settings,
    estimated_bits,
    secret_weakness,
    unknown_settings,
)
from panic_alert.cli import load_settings

MEDIA_KEY = "media-prod-Zq8s7d6f5g4h3j2k0123456789"
PROD_SECRETS = {
    "PANIC_POSTGRES__PASSWORD": "pg-prod-Zq8s7d6f5g4h3j2k",
    "PANIC_MONGO__PASSWORD": "mongo-prod-Zq8s7d6f5g4h3j2k",
    "PANIC_AUTH__JWT_SECRET": "jwt-prod-0123456789abcdef0123456789abcdef",
    "PANIC_WEBHOOK_SECRET": "webhook-prod-Zq8s7d6f5g4h3j2k",
    "PANIC_TOTP__ENCRYPTION_KEY": "totp-prod-Zq8s7d6f5g4h3j2k0123456789",
    "PANIC_MEDIA__MASTER_KEYS": json.dumps({"prod-1": MEDIA_KEY}),
    "PANIC_MEDIA__ACTIVE_KEY_ID": "prod-1",
}
#: Settings in PROD_SECRETS that are names, not secrets.
_NOT_SECRET = frozenset({"PANIC_MEDIA__ACTIVE_KEY_ID"})


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from no PANIC_* variables (the developer's shell may set some)."""
    import os

    for name in list(os.environ):
        if name.startswith("PANIC_") or name == "RAY_ADDRESS":
            monkeypatch.delenv(name)


def test_nested_groups_are_read_with_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANIC_POSTGRES__PORT", "5433")
    monkeypatch.setenv("PANIC_POSTGRES__HOST", "db.internal")
    monkeypatch.setenv("PANIC_HTTP__PORT", "9001")
    monkeypatch.setenv("PANIC_HTTP__CORS_ORIGINS", '["https://portal.example.org"]')
    monkeypatch.setenv("PANIC_RAY__DASHBOARD_PORT", "18265")
    monkeypatch.setenv("PANIC_RAY__NUM_CPUS", "2")
    monkeypatch.setenv("PANIC_LOG_LEVEL", "DEBUG")
    settings = Settings()
    assert settings.postgres.port == 5433
    assert settings.postgres.host == "db.internal"
    assert settings.postgres.user == "panic"  # untouched fields keep their defaults
    assert settings.http.port == 9001
    assert settings.http.cors_origins == ["https://portal.example.org"]
    assert settings.ray.dashboard_port == 18265
    assert settings.ray.num_cpus == 2
    assert settings.log_level == "DEBUG"
    assert settings.postgres.dsn().endswith("@db.internal:5433/panic_alert")


def test_a_variable_that_sets_nothing_is_named_with_the_closest_setting() -> None:
    environ = {
        "PANIC_GEOFENCE__BATCH_LINGER": "5",  # the setting is ..._MS
        "PANIC_AUTH__JWT_SECRT": "x",
        "PANIC_NO_SUCH_GROUP__PORT": "1",
        "PANIC_POSTGRES__PORT__EXTRA": "1",  # a scalar has no fields
        "PANIC_POSTGRES____PORT": "1",
    }
    assert unknown_settings(environ) == [
        ("PANIC_AUTH__JWT_SECRT", "PANIC_AUTH__JWT_SECRET"),
        ("PANIC_GEOFENCE__BATCH_LINGER", "PANIC_GEOFENCE__BATCH_LINGER_MS"),
        ("PANIC_NO_SUCH_GROUP__PORT", None),
        ("PANIC_POSTGRES__PORT__EXTRA", "PANIC_POSTGRES__PORT"),
        ("PANIC_POSTGRES____PORT", "PANIC_POSTGRES__PORT"),
    ]


def test_settings_groups_mappings_and_the_scripts_own_variables_are_not_unknown() -> None:
    environ = {
        "PANIC_GEOFENCE__BATCH_LINGER_MS": "5",
        "panic_postgres__port": "5433",  # names are not case-sensitive
        "PANIC_MEDIA__S3__ENDPOINT": "http://127.0.0.1:8333",  # a group within a group
        "PANIC_MEDIA__MASTER_KEYS__K1": "x",  # a mapping's keys are the user's
        "PANIC_POSTGRES": "{}",  # a whole group as JSON
        "PANIC_KAFKA_HEAP": "1g",  # no "__": the scripts' own
        "PATH": "/usr/bin",
    }
    assert unknown_settings(environ) == []


def test_the_cli_warns_of_a_misspelt_setting_and_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PANIC_GEOFENCE__BATCH_LINGER", "5")
    monkeypatch.setenv("PANIC_HTTP__PORT", "9001")
    settings = load_settings()
    assert settings.http.port == 9001
    assert capsys.readouterr().err == (
        "panic-alert: warning: PANIC_GEOFENCE__BATCH_LINGER sets no setting and is "
        "ignored (did you mean PANIC_GEOFENCE__BATCH_LINGER_MS?)\n"
    )


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANIC_HTTP__PORT", "70000")
    with pytest.raises(ValidationError) as excinfo:
        Settings()
    assert excinfo.value.errors()[0]["loc"] == ("http", "port")


def test_defaults_are_local_development() -> None:
    settings = Settings()
    assert settings.profile is Profile.DEV
    assert settings.http.host == "127.0.0.1"
    assert settings.http.port == 8000
    assert settings.ray.address == ""
    assert settings.ray.dashboard_port == 8265


@pytest.mark.parametrize("profile", ["dev", "test"])
def test_dev_secrets_are_accepted_in_dev_and_test(
    monkeypatch: pytest.MonkeyPatch, profile: str
) -> None:
    monkeypatch.setenv("PANIC_PROFILE", profile)
    settings = Settings()
    assert settings.postgres.password.get_secret_value() in DEV_SECRETS
    assert settings.auth.jwt_secret.get_secret_value() in DEV_SECRETS


def test_dev_secrets_are_refused_in_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANIC_PROFILE", "prod")
    with pytest.raises(ValidationError) as excinfo:
        Settings()
    message = str(excinfo.value)
    for name in ("postgres.password", "mongo.password", "auth.jwt_secret", "webhook_secret"):
        assert name in message


def test_one_remaining_dev_secret_is_refused_in_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANIC_PROFILE", "prod")
    for name, value in PROD_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PANIC_WEBHOOK_SECRET")
    with pytest.raises(ValidationError, match="webhook_secret"):
        Settings()


def test_prod_with_real_secrets_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANIC_PROFILE", "prod")
    for name, value in PROD_SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.profile is Profile.PROD
    assert settings.auth.jwt_secret.get_secret_value() == PROD_SECRETS["PANIC_AUTH__JWT_SECRET"]


def test_prod_refuses_a_short_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANIC_PROFILE", "prod")
    for name, value in PROD_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PANIC_AUTH__JWT_SECRET", "too-short")
    with pytest.raises(ValidationError, match="32"):
        Settings()


def test_secrets_are_not_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PROD_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PANIC_REDIS__PASSWORD", "redis-pw-Zq8s7d6f")
    settings = Settings()
    rendered = repr(settings) + str(settings) + repr(settings.postgres) + str(settings.auth)
    rendered += settings.model_dump_json()
    secrets = [v for k, v in PROD_SECRETS.items() if k not in _NOT_SECRET]
    for secret in [*secrets, MEDIA_KEY, "redis-pw-Zq8s7d6f"]:
        assert secret not in rendered
    assert "**********" in rendered
    # ... while the connection strings that need them still carry them.
    assert PROD_SECRETS["PANIC_POSTGRES__PASSWORD"] in settings.postgres.dsn()
    assert "redis-pw-Zq8s7d6f" in settings.redis.url()


# ------------------------------------------------- issue 16: deployment defaults


def _prod(monkeypatch: pytest.MonkeyPatch, **overrides: str) -> None:
    monkeypatch.setenv("PANIC_PROFILE", "prod")
    for name, value in {**PROD_SECRETS, **overrides}.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    ("name", "weak", "reason"),
    [
        (
            "PANIC_AUTH__JWT_SECRET",
            "CHANGE-ME-to-a-random-key-of-48-characters-or-more",
            "placeholder",
        ),
        ("PANIC_AUTH__JWT_SECRET", "a" * 64, "predictable"),
        ("PANIC_AUTH__JWT_SECRET", "ab" * 32, "predictable"),
        ("PANIC_POSTGRES__PASSWORD", "short-Pw1", "shorter than 16"),
        ("PANIC_MONGO__PASSWORD", "password-password-password", "placeholder"),
        ("PANIC_WEBHOOK_SECRET", "1111111111111111111111", "predictable"),
    ],
)
def test_finding_prod_refuses_weak_or_default_secrets(
    monkeypatch: pytest.MonkeyPatch, name: str, weak: str, reason: str
) -> None:
    """docker-compose ran with the public dev secrets; prod now refuses any weak one."""
    _prod(monkeypatch, **{name: weak})
    with pytest.raises(ValidationError) as excinfo:
        Settings()
    message = str(excinfo.value)
    setting = name.removeprefix("PANIC_").lower().replace("__", ".")
    assert setting in message
    assert reason in message
    assert weak not in message  # the error names the setting, never echoes the value


def test_prod_refuses_the_public_dev_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    dev_jwt = next(s for s in DEV_SECRETS if s.startswith("dev-only-jwt"))
    _prod(monkeypatch, PANIC_AUTH__JWT_SECRET=dev_jwt)
    with pytest.raises(ValidationError, match=r"auth\.jwt_secret"):
        Settings()


def test_finding_jwt_secret_length_follows_the_algorithm(monkeypatch: pytest.MonkeyPatch) -> None:
    key_40 = "Zq8s7d6f5g4h3j2kL1mN0bV9cX8zA7sD6fG5hJ4k"
    _prod(monkeypatch, PANIC_AUTH__JWT_SECRET=key_40)
    assert Settings().auth.jwt_algorithm is JwtAlgorithm.HS256
    monkeypatch.setenv("PANIC_AUTH__JWT_ALGORITHM", "HS512")
    with pytest.raises(ValidationError, match="shorter than 64"):
        Settings()


def test_finding_jwt_algorithm_is_an_enum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANIC_AUTH__JWT_ALGORITHM", "none")
    with pytest.raises(ValidationError) as excinfo:
        Settings()
    assert excinfo.value.errors()[0]["loc"] == ("auth", "jwt_algorithm")
    monkeypatch.setenv("PANIC_AUTH__JWT_ALGORITHM", "HS384")
    assert Settings().auth.jwt_algorithm is JwtAlgorithm.HS384


def test_finding_smtp_starttls_is_used_when_offered_by_default() -> None:
    # None is aiosmtplib's "STARTTLS if the server offers it"; False never upgraded.
    assert Settings().notify.smtp_start_tls is None


def test_finding_no_proxy_is_trusted_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().security.trusted_proxies == []
    monkeypatch.setenv("PANIC_SECURITY__TRUSTED_PROXIES", '["10.0.0.5", "fd00::/8"]')
    assert [str(n) for n in Settings().security.trusted_proxies] == ["10.0.0.5/32", "fd00::/8"]
    monkeypatch.setenv("PANIC_SECURITY__TRUSTED_PROXIES", '["*"]')
    with pytest.raises(ValidationError):
        Settings()


def test_weakness_estimate_orders_secrets() -> None:
    assert secret_weakness("Zq8s7d6f5g4h3j2k", min_length=16, min_bits=64) is None
    assert estimated_bits("aaaa") == 0
    assert estimated_bits("abcd") == 8


def test_the_emergency_number_is_digits_only() -> None:
    assert ConsoleSettings(emergency_number="+4930110").emergency_number == "+4930110"
    for bad in ("", "1", "911; rm", "tel:112", "12 34"):
        with pytest.raises(ValidationError):
            ConsoleSettings(emergency_number=bad)
