"""The shipped deployment files agree with the code.

No container engine runs here, so these checks are what keeps
docker-compose.yml, the Dockerfile and the Kubernetes manifests honest: they
parse, every ``PANIC_*`` variable they set is a real setting, and the topic
list matches the one the services script creates.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from actors.effects import Topic
from config.settings import DEV_SECRETS, Settings

ROOT = Path(__file__).resolve().parents[2]


def _known_env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= {f"PANIC_{name}__{sub}".upper() for sub in annotation.model_fields}
        else:
            names.add(f"PANIC_{name}".upper())
    return names


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def _k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def test_compose_panic_variables_are_settings() -> None:
    env = _compose()["services"]["api"]["environment"]
    unknown = {k for k in env if k.startswith("PANIC_")} - _known_env_names()
    assert not unknown, f"docker-compose.yml sets unknown settings: {unknown}"


def test_compose_creates_exactly_the_seed_topics() -> None:
    script = " ".join(_compose()["services"]["kafka-topics"]["command"])
    listed = re.search(r"for t in (.*?); do", script)
    assert listed is not None
    assert tuple(listed.group(1).split()) == tuple(t.value for t in Topic)


def test_k8s_manifests_parse_and_use_real_settings() -> None:
    docs = _k8s_docs()
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ConfigMap", "Job"} <= kinds
    for doc in docs:
        assert doc.get("apiVersion"), doc
        assert doc["metadata"].get("name"), doc
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    unknown = set(config["data"]) - _known_env_names()
    assert not unknown, f"ConfigMap sets unknown settings: {unknown}"


def test_k8s_ships_no_secret_values() -> None:
    assert not [d for d in _k8s_docs() if d["kind"] == "Secret"]


@pytest.mark.parametrize(
    "package",
    tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"][
        "wheel"
    ]["packages"],
)
def test_dockerfile_copies_every_package(package: str) -> None:
    assert f"COPY {package} {package}" in (ROOT / "Dockerfile").read_text()


def test_dockerfile_copies_every_path_dependency() -> None:
    """``uv sync --frozen`` needs each ``[tool.uv.sources]`` path (the Python client)."""
    sources = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["sources"]
    paths = [source["path"] for source in sources.values() if "path" in source]
    assert paths, "no path dependency: drop this test"
    dockerfile = (ROOT / "Dockerfile").read_text()
    for path in paths:
        assert f"COPY {path} {path}" in dockerfile


# ------------------------------------------------- issue 16: deployment defaults


def _published(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host address, container port) of each published port; "" = every interface."""
    found = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            found.append((str(entry.get("host_ip", "")), str(entry["target"])))
            continue
        parts = str(entry).split(":")
        host_ip = parts[0] if len(parts) == 3 else ""
        found.append((host_ip, parts[-1].split("/")[0]))
    return found


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_finding_compose_does_not_publish_the_ray_dashboard_on_all_interfaces() -> None:
    api = _compose()["services"]["api"]
    for host_ip, target in _published(api):
        if target == "8265":
            assert host_ip in {"127.0.0.1", "::1"}, f"Ray dashboard published on {host_ip!r}"
    dashboard_host = api["environment"].get("PANIC_RAY__DASHBOARD_HOST", "127.0.0.1")
    assert dashboard_host == "127.0.0.1"
    for name, service in _compose()["services"].items():
        assert all(target != "8265" or ip for ip, target in _published(service)), name


def test_finding_compose_runs_prod_with_secrets_from_the_operators_env_file() -> None:
    compose = _compose()
    api = compose["services"]["api"]
    assert api["environment"]["PANIC_PROFILE"] == "prod"
    assert ".env" in api["env_file"]
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in DEV_SECRETS:
        assert secret not in text
    assert not {k for k in api["environment"] if k in _SECRET_NAMES}, "secrets belong in .env"
    # PostgreSQL's own password comes from the same .env, required.
    password = compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert password.startswith("${PANIC_POSTGRES__PASSWORD:?")


_SECRET_NAMES = {
    "PANIC_POSTGRES__PASSWORD",
    "PANIC_MONGO__PASSWORD",
    "PANIC_AUTH__JWT_SECRET",
    "PANIC_WEBHOOK_SECRET",
    "PANIC_MEDIA__MASTER_KEYS",
}


def test_finding_env_example_names_every_secret_and_its_placeholders_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = _env_example()
    assert set(example) >= _SECRET_NAMES
    assert set(example) <= _known_env_names()
    for name in list(os.environ):
        if name.startswith("PANIC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PANIC_PROFILE", "prod")
    for name, value in example.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as excinfo:
        Settings()
    for name in _SECRET_NAMES:
        assert name.removeprefix("PANIC_").lower().replace("__", ".") in str(excinfo.value)


def test_env_file_is_not_committed() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text().split()
