"""schemathesis against every service's OpenAPI document: each service runs as a process on the real
broker and store, and every operation gets requests generated from its own schema (valid ones and
deliberately invalid ones), sent with a token that holds every scope.

Checks: not_a_server_error (no 5xx, whatever the input) and response_schema_conformance (every
answer is what the document promises). Each failure is listed with its request and answer; the suite
prints `schemathesis: cases=<n> failures=<n>`. API_FUZZ_CASES is the examples per operation and mode.
"""
import asyncio
import os
import uuid

import httpx
import pytest
import schemathesis
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from maillink_devtools.processes import ServiceSet
from maillink_schemas.scopes import Scope
from tests.conftest import KAFKA, MONGODB_URL, RUN_DIR, bearer, drop_namespace
from tests.fuzzing import Tally, fuzz_settings

pytestmark = pytest.mark.e2e
SERVICES = ("ingest", "matcher", "tracker", "outbound", "bcc_gateway")
PER_OPERATION = int(os.environ.get("API_FUZZ_CASES", "4"))
TALLY = Tally("schemathesis")


@pytest.fixture(scope="module")
def services(auth_env):
    namespace = f"t{uuid.uuid4().hex[:10]}."
    env = {**auth_env, "MAILLINK_NAMESPACE": namespace, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "MONGODB_URL": MONGODB_URL,
           "MAILLINK_CREDENTIALS_KEY": Fernet.generate_key().decode()}
    base = 26000 + uuid.uuid4().int % 500 * 10
    procs = ServiceSet()
    try:
        for i, name in enumerate(SERVICES):
            procs.start(name, base + i, env, RUN_DIR / "e2e-logs" / namespace)
        procs.wait_healthy(timeout=120)
        yield procs
    finally:
        procs.stop()
        asyncio.run(drop_namespace(namespace))  # the five services' topics and databases


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_of_the_service_document(service, services, token):
    url = services.running[service].url
    headers = bearer(token("u-fuzz", *[s.value for s in Scope], company="c-test"))
    document = httpx.get(f"{url}/openapi.json", headers=headers, timeout=30)
    assert document.status_code == 200, document.text
    schema = schemathesis.openapi.from_dict(document.json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, f"{service} documents no operations"
    for operation in operations:
        strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                             operation.as_strategy(GenerationMode.NEGATIVE))

        @fuzz_settings(default=PER_OPERATION, max_examples=PER_OPERATION)
        @given(strategy)
        def run(case):
            try:
                case.call_and_validate(base_url=url, headers=headers, timeout=30,
                                       checks=[not_a_server_error, response_schema_conformance])
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - schemathesis' FailureGroup; listed at the end
                TALLY.record(f"{service} {operation.method.upper()} {operation.path}", exc)
            else:
                TALLY.record("", None)

        run()
    assert services.running[service].process.poll() is None, f"{service} exited"
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200


def test_schemathesis_verdict(capsys):
    TALLY.report(capsys)
