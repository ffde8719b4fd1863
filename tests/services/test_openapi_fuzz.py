"""schemathesis against the live server's own OpenAPI document: no request may answer 5xx.

Every operation the document lists (however many it grows to) is called with
generated parameters and bodies, with the admin token, at a CI-sized example
count. Only `not_a_server_error` is checked: the document does not yet declare
every response, and a 4xx for a generated body is the right answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from corral.app import Corral
from corral.config import Settings
from corral.services.serve import CorralServer, ServeOptions
from tests.helpers.loop import run_in_thread
from tests.services.conftest import LiveServer

STREAMS = ("/api/v1/events",)  # server-sent events: a GET that never ends by design
EXAMPLES = 8  # per operation; CI-sized


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = Path(tmp_path_factory.mktemp("openapi")) / "corral"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CORRAL_HOME", str(home))
        patch.delenv("CORRAL_DATABASE_URL", raising=False)
        corral = Corral(Settings.from_env())
    options = ServeOptions(address="127.0.0.1", http_port=0, dhcp=False, tftp=False, seeder=False)
    for started in run_in_thread(CorralServer(corral, options)):
        token = corral.admin_token()
        assert token
        yield LiveServer(corral, started, options.server_url, token)


def test_no_operation_answers_a_server_error(api_server: LiveServer) -> None:
    """Hypothesis drives each operation in turn; all failures are listed together."""
    schema = schemathesis.openapi.from_url(f"{api_server.url}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {api_server.token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10  # the document lists the API, not an empty stub
    failures: dict[str, str] = {}
    for operation in operations:
        if operation.path in STREAMS:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error], timeout=20)

        try:
            call()
        except Exception as exc:  # reported below, with every other operation's
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
