"""ray-cluster.yaml is valid for Ray's cluster launcher (the checks `ray up` runs first)."""

from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from config.settings import REPO_ROOT

CONFIG_PATH = REPO_ROOT / "ray-cluster.yaml"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded = yaml.safe_load(CONFIG_PATH.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_raw_file_matches_rays_bundled_schema(config: dict[str, Any]) -> None:
    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    jsonschema.validate(config, json.loads(schema_path.read_text()))


def test_prepared_config_passes_rays_validation(config: dict[str, Any]) -> None:
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    head_type = prepared["head_node_type"]
    assert head_type in prepared["available_node_types"]
    workers = prepared["available_node_types"][head_type]
    assert workers["min_workers"] == len(config["provider"]["worker_ips"])


def test_head_exposes_the_dashboard_on_8265(config: dict[str, Any]) -> None:
    start = " ".join(config["head_start_ray_commands"])
    assert "ray start --head" in start
    assert "--dashboard-host=0.0.0.0" in start
    assert "--dashboard-port=8265" in start


def test_workers_join_the_heads_gcs_port(config: dict[str, Any]) -> None:
    head = " ".join(config["head_start_ray_commands"])
    worker = " ".join(config["worker_start_ray_commands"])
    (head_port,) = [a.split("=", 1)[1] for a in shlex.split(head) if a.startswith("--port=")]
    assert f"--address=$RAY_HEAD_IP:{head_port}" in worker
    # Not Redis's port: Redis may share the head node.
    assert head_port != "6379"


def test_setup_installs_the_project_from_the_synced_checkout(config: dict[str, Any]) -> None:
    (target,) = [t for t, source in config["file_mounts"].items() if source == "."]
    # Exactly the versions uv.lock pins, into the venv the start commands use.
    assert any(
        c.startswith(f"cd {target} ") and "uv sync --frozen" in c and "~/panic-alert-venv" in c
        for c in config["setup_commands"]
    )
    # ray itself comes from the project's dependencies, the same version everywhere.
    venv_ray = "~/panic-alert-venv/bin/ray"
    assert all(venv_ray in c for c in config["head_start_ray_commands"] if "ray " in c)
