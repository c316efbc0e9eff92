"""The shipped deployment files agree with the code.

No container engine runs here, so these checks are what keeps
docker-compose.yml, the Dockerfile and the Kubernetes manifests honest: they
parse, every ``PANIC_*`` variable they set is a real setting, and the topic
list matches the one the services script creates.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from actors.effects import Topic
from config.settings import Settings

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
