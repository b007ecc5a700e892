# mypy: allow-untyped-defs
"""Property-based API test: schemathesis generates requests from /openapi.json and sends them
to the console app as a logged-in manager (session cookie + CSRF header). No request may get a
5xx, and every JSON answer must match the response model the document declares."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from cloud_ingest.web.security import CSRF_HEADER, SESSION_COOKIE
from tests.support.console import (
    METRICS_TOKEN,
    client_as,
    close_unstarted,
    console_app,
    console_db_for,
)
from tests.support.ingest import make_settings, write_registry
from tests.support.stack import Stack


class NoBroker:
    port = 1


@pytest.fixture
def console(tmp_path, influxd, influx_db, topic_prefix):
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(
        tmp_path, NoBroker(), influxd, influx_db, topic_prefix, metrics_token=METRICS_TOKEN
    )
    service = Stack(settings)  # reports read the real InfluxDB; no broker needed
    app = console_app(service, console_db_for(tmp_path, ids))
    client = client_as(app, "mgr-a")
    auth = {
        "cookies": {SESSION_COOKIE: client.cookies[SESSION_COOKIE]},
        "headers": {
            CSRF_HEADER: client.headers[CSRF_HEADER],
            "Authorization": f"Bearer {METRICS_TOKEN}",  # /metrics and /healthz details
        },
    }
    yield app, auth
    client.close()
    close_unstarted(service)


MAX_EXAMPLES = 12


def test_no_server_errors_and_responses_match_the_document(console):
    app, auth = console
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    every = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    # POST /logout would end the very session the other requests use; test_security_routes
    # covers it.
    operations = [op for op in every if op.path != "/logout"]
    paths = {op.path for op in operations}
    assert {"/api/v1/registry/people", "/api/v1/reports/monthly", "/metrics"} <= paths
    checked: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,  # the same examples every run: a CI failure reproduces locally
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case):
            response = case.call(**auth)
            if case.path != "/login":  # a wrong password there is a correct 401
                statuses[response.status_code] += 1
            if case.path == "/healthz":
                # Not started on purpose (no broker): degraded is the correct answer.
                assert response.status_code == 503
                return
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            case.validate_response(
                response, checks=[response_schema_conformance, content_type_conformance]
            )

        run()
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert len(checked) == len(operations) >= 20
    # Really logged in and really reaching the handlers, not bounced at the door.
    assert statuses[401] == 0 and statuses[200] >= 30, statuses
