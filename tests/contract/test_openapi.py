"""The OpenAPI file and the served /api/v1 routes describe the same operations."""

from __future__ import annotations

from pathlib import Path

import yaml

from sandbox.app import create_app
from sandbox.settings import SandboxSettings

SPEC = Path(__file__).resolve().parents[2] / "backend_client" / "openapi.yaml"


def _served() -> set[tuple[str, str]]:
    app = create_app(SandboxSettings(_env_file=None))  # type: ignore[call-arg]
    out = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method in ("GET", "POST", "PUT", "PATCH",
                                                          "DELETE"):
            out.add((route.method, path))
    return out


def _documented() -> set[tuple[str, str]]:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    assert spec["openapi"].startswith("3.1")
    return {(method.upper(), path) for path, ops in spec["paths"].items()
            for method in ops if method in ("get", "post", "put", "patch", "delete")}


def test_every_served_route_is_documented_and_vice_versa():
    """/api/v1 is the contract; the /sandbox hooks are documented too, tagged sandbox-only."""
    served, documented = _served(), _documented()
    assert served == documented, {"undocumented": served - documented,
                                  "not served": documented - served}


def test_sandbox_hooks_are_tagged_and_api_operations_are_not():
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    for path, ops in spec["paths"].items():
        for op in ops.values():
            hook = "sandbox-only" in op.get("tags", [])
            assert hook == (not path.startswith("/api/v1")), path


def test_spec_references_resolve():
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    text = SPEC.read_text(encoding="utf-8")
    import re

    for ref in set(re.findall(r'\$ref: "#/components/(\w+)/(\w+)"', text)):
        assert ref[1] in spec["components"][ref[0]], ref
