"""Check an EIDO against NENA's own schema (NENA-STA-021.1b), not against our idea of it.

The schema is an OpenAPI 3.0 document whose NIEM types live in other files; it is read from the
folder named by EIDO_SCHEMA_DIR (../shared/eido/sta-021.1b, set by .ci/run and scripts/test) and
never copied into the project. Two checks:

- `schema_errors(document)`: every error OAS30Validator (with OAS 3.0 formats) finds, resolving
  references across files through a `referencing` registry.
- `unknown_members(document)`: the schema does not say `additionalProperties: false`, so a
  member it does not define passes silently; this walks the document beside the schema
  (through allOf and $ref) and names every member the schema does not define.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

if TYPE_CHECKING:
    from referencing._core import Resolver

ROOT_POINTER = "#/components/schemas/EmergencyIncidentDataObjectType"
"""Where the EIDO root type sits in NENA's openapi.yaml."""


def schema_dir() -> Path:
    """The folder holding NENA's Schema/openapi.yaml (skips the test when it is not set)."""
    raw = os.environ.get("EIDO_SCHEMA_DIR", "").strip()
    if not raw:
        pytest.skip("EIDO_SCHEMA_DIR is not set (scripts/test and .ci/run set it)")
    folder = Path(raw)
    if (folder / "Schema" / "openapi.yaml").exists():
        folder = folder / "Schema"
    if not (folder / "openapi.yaml").exists():
        pytest.fail(f"EIDO_SCHEMA_DIR={raw}: no openapi.yaml there or in its Schema/ folder")
    return folder.resolve()


@cache
def _registry(folder: Path) -> tuple[Registry, str]:
    def retrieve(uri: str) -> Resource:
        path = Path(uri.removeprefix("file://"))
        # NENA writes one reference as 'NIEMComponents//nc.yaml': the double slash is the
        # same file.
        path = Path(os.path.normpath(path))
        with path.open(encoding="utf-8") as handle:
            return Resource.from_contents(yaml.safe_load(handle), default_specification=DRAFT4)

    base = (folder / "openapi.yaml").as_uri()
    registry: Registry = Registry(retrieve=retrieve)  # type: ignore[call-arg]
    return registry, base


def _root(folder: Path) -> tuple[Any, Resolver]:
    registry, base = _registry(folder)
    resolved = registry.resolver(base_uri=base).lookup(base + ROOT_POINTER)
    return resolved.contents, resolved.resolver


def schema_errors(document: Any) -> list[str]:
    """Every error NENA's schema finds in `document` (an empty list: it conforms)."""
    folder = schema_dir()
    registry, base = _registry(folder)
    schema = {"$ref": base + ROOT_POINTER}
    validator = OAS30Validator(schema, registry=registry, format_checker=oas30_format_checker)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def _branches(schema: Any, resolver: Resolver) -> Iterator[tuple[dict[str, Any], Resolver]]:
    """The schema and every schema it stands for through $ref and allOf, each with the resolver
    its own references resolve against."""
    if not isinstance(schema, dict):
        return
    if "$ref" in schema and isinstance(schema["$ref"], str):
        resolved = resolver.lookup(schema["$ref"])
        yield from _branches(resolved.contents, resolved.resolver)
        return
    yield schema, resolver
    for part in schema.get("allOf", []):
        yield from _branches(part, resolver)


def unknown_members(document: Any) -> list[str]:
    """Paths of members `document` carries that NENA's schema does not define."""
    schema, resolver = _root(schema_dir())
    found: list[str] = []
    _walk(document, schema, resolver, "", found)
    return found


def _walk(value: Any, schema: Any, resolver: Resolver, path: str, found: list[str]) -> None:
    branches = list(_branches(schema, resolver))
    if isinstance(value, dict):
        properties: dict[str, tuple[Any, Resolver]] = {}
        for branch, branch_resolver in branches:
            for name, sub in (branch.get("properties") or {}).items():
                properties.setdefault(name, (sub, branch_resolver))
        for name, member in value.items():
            if name not in properties:
                found.append(f"{path}/{name}")
                continue
            sub, sub_resolver = properties[name]
            _walk(member, sub, sub_resolver, f"{path}/{name}", found)
    elif isinstance(value, list):
        for branch, branch_resolver in branches:
            if "items" in branch:
                for index, item in enumerate(value):
                    _walk(item, branch["items"], branch_resolver, f"{path}/{index}", found)
                break


def assert_conforms(document: Any) -> None:
    """0 schema errors and 0 members the schema does not define."""
    errors = schema_errors(document)
    unknown = unknown_members(document)
    assert not errors and not unknown, (
        f"{len(errors)} schema errors, {len(unknown)} unknown members:\n"
        + "\n".join(errors + [f"not in the schema: {u}" for u in unknown])
    )


def sample_document() -> Any:
    """NENA's own sample (the checks' own test: it must pass them)."""
    import json

    folder = schema_dir().parent
    with (folder / "Samples" / "Sample call transfer EIDO.json").open(encoding="utf-8") as handle:
        return json.load(handle)
