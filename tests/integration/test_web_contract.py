"""The console's API types are generated from the gateway's own OpenAPI
document, never hand-copied: the committed document and the TypeScript made
from it must be what the gateway and openapi-typescript give today.

To refresh both: ``panic-alert openapi > web/shared/openapi.json`` then
``npm run gen:api`` in ``web/``.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from config.settings import REPO_ROOT, Settings
from gateway.app import create_app

pytestmark = pytest.mark.integration

SHARED = REPO_ROOT / "web" / "shared"
REFRESH = "run `panic-alert openapi > web/shared/openapi.json`, then `npm run gen:api` in web/"


def test_the_committed_openapi_document_is_the_gateways() -> None:
    served = create_app(Settings()).openapi()
    committed = json.loads((SHARED / "openapi.json").read_text())
    assert committed == json.loads(json.dumps(served)), (
        f"web/shared/openapi.json is stale: {REFRESH}"
    )


def test_the_typescript_types_are_generated_from_it() -> None:
    generated = subprocess.run(
        ["npx", "--no-install", "openapi-typescript", "./openapi.json"],
        cwd=SHARED,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    committed = (SHARED / "src" / "api" / "schema.d.ts").read_text()
    assert generated.stdout.strip() == committed.strip(), f"schema.d.ts is stale: {REFRESH}"
