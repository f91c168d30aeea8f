"""Fuzzing of every route described in ``/openapi.json`` with schemathesis.

Each operation gets generated requests, valid and invalid, with a valid key. No response may
be a server error, and every response must match the schema documented for its status.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.api.main import create_app
from app.config import Settings
from tests.e2e.conftest import Account, Stack

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# The running API serves a document built from the same application. Building it here needs
# no services, so the tests can be generated when the module loads.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())


def test_served_document_matches(stack: Stack) -> None:
    served = httpx.get(f"{stack.url}/openapi.json", timeout=10).json()
    assert served == schema.raw_schema


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_answers_within_schema(
    case: schemathesis.Case[Any], stack: Stack, fuzz_account: Account
) -> None:
    case.call_and_validate(base_url=stack.url, headers=fuzz_account.headers, checks=CHECKS)


@pytest.fixture(scope="session")
def fuzz_account(stack: Stack) -> Account:
    # Its own workspace, so the jobs the fuzzer creates do not show in other tests' listings.
    return stack.new_account(balance=1_000_000)
