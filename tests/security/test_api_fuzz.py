"""Schemathesis against the OpenAPI schema, as an admin and as an annotator: no 5xx, answers match the schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from tests.factories import Persona, add_members, create_project, import_lines, pair_lines

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
EXAMPLES_PER_OPERATION = 10


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(operation: Any, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        calls.append(case.path)
        case.call_and_validate(headers=headers, checks=CHECKS)

    calls: list[str] = []
    run()
    assert calls, f"no request generated for {operation.path}"


@pytest.fixture
def seeded(client: Any, admin: Persona, annotator: Persona) -> dict[str, Any]:
    """A project with items and a member, so that generated requests sometimes meet real rows."""
    project = create_project(client, admin)
    add_members(client, admin, project["id"], annotator)
    import_lines(client, admin, project["id"], pair_lines(3))
    return project


@pytest.mark.parametrize("role", ["admin", "annotator"])
def test_every_operation_answers_without_5xx_and_as_documented(
    role: str, app: Any, seeded: dict[str, Any], admin: Persona, annotator: Persona
) -> None:
    headers = (admin if role == "admin" else annotator).headers
    failures = []
    operations = _operations(app)
    assert len(operations) >= 35
    for operation in operations:
        try:
            _fuzz(operation, headers)
        except Exception as error:
            failures.append(f"{operation.method.upper()} {operation.path}: {str(error)[:600]}")
    assert failures == [], "\n\n".join(failures)
