"""Issue 10 §2: every call `PgeClient` sends passes its call gate, named by kind, with the
priority of the work it serves; a refused call never reaches the network; a client without a
gate (the seed SDK) still works. `gascap.pge` stays free of Django."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses

from gascap.pge.client import PgeClient
from gascap.pge.config import PgeConfig
from gascap.pge.errors import PgeTransientError, PgeUrlRefused
from gascap.pge.gate import (
    BudgetExhausted,
    CallKind,
    Priority,
    call_priority,
    current_priority,
)
from tests.pge.conftest import API_BASE, TOKEN_URL
from tests.pge.test_client import NOW, SID, TOKEN_ANSWER

STATUS_BODY = (
    "<ServiceStatus xmlns='http://naesb.org/espi'><currentStatus>1</currentStatus></ServiceStatus>"
)


class RecordingGate:
    def __init__(self, refuse: bool = False) -> None:
        self.before: list[tuple[CallKind, Priority]] = []
        self.after: list[tuple[CallKind, int | None]] = []
        self.refuse = refuse

    def before_call(self, kind: CallKind, priority: Priority) -> None:
        self.before.append((kind, priority))
        if self.refuse:
            raise BudgetExhausted(
                kind=str(kind),
                priority=int(priority),
                window="hour",
                retry_at=datetime(2030, 1, 1, tzinfo=UTC),
                used=1,
                cap=1,
            )

    def after_call(self, kind: CallKind, status: int | None) -> None:
        self.after.append((kind, status))


@pytest.fixture
def gate() -> RecordingGate:
    return RecordingGate()


@pytest.fixture
def gated(pge_config: PgeConfig, gate: RecordingGate) -> PgeClient:
    return PgeClient(pge_config, gate=gate)


@responses.activate
def test_every_call_passes_the_gate_with_its_kind(gated: PgeClient, gate, fixture_path) -> None:  # type: ignore[no-untyped-def]
    entry = Path(fixture_path("pge_cmd_2015_authorization_entry.xml")).read_bytes()
    client_answer = {"client_access_token": "cat-1", "expires_in": 3600, "scope": "x"}
    responses.post(TOKEN_URL, json=TOKEN_ANSWER)
    responses.post(TOKEN_URL, json=TOKEN_ANSWER)
    responses.post(TOKEN_URL, json=client_answer)
    responses.get(f"{API_BASE}Authorization/{SID}", body=entry)
    responses.get(f"{API_BASE}Authorization", body=entry)
    responses.delete(f"{API_BASE}Authorization/{SID}", status=200, body="")
    responses.get(f"{API_BASE}ReadServiceStatus", body=STATUS_BODY)
    responses.get(f"{API_BASE}Batch/Subscription/{SID}", status=202, body="")
    responses.get(f"{API_BASE}Batch/Bulk/50098", status=202, body="")
    responses.get(f"{API_BASE}Batch/Subscription/{SID}/UsagePoint/1", status=204, body="")
    responses.get(f"{API_BASE}Batch/Bulk/50098?correlationID=abc", status=200, body="<feed/>")

    gated.exchange_code(code="c-1", redirect_uri="https://x.example/cb", now=NOW)
    gated.refresh(refresh_token="r-1", now=NOW)
    gated.client_credentials(now=NOW)
    gated.authorization_get(subscription_id=SID, client_token="t")
    gated.authorizations_list(client_token="t")
    gated.authorization_delete(subscription_id=SID, client_token="t")
    assert gated.service_status(client_token="t") is True
    gated.request_subscription_async(
        subscription_id=SID, published_min=1, published_max=2, access_token="t"
    )
    gated.request_bulk(bulk_id="50098", client_token="t")
    gated.request_subscription_usage_point_sync(
        subscription_id=SID, usage_point_id="1", published_min=1, published_max=2, access_token="t"
    ).close()
    gated.fetch(url=f"{API_BASE}Batch/Bulk/50098?correlationID=abc", access_token="t").close()

    kinds = [kind for kind, _ in gate.before]
    assert kinds == [
        CallKind.TOKEN_CODE,
        CallKind.TOKEN_REFRESH,
        CallKind.TOKEN_CLIENT,
        CallKind.AUTHORIZATION_GET,
        CallKind.AUTHORIZATION_GET,
        CallKind.AUTHORIZATION_DELETE,
        CallKind.SERVICE_STATUS,
        CallKind.DATA_REQUEST,
        CallKind.DATA_REQUEST,
        CallKind.FETCH,
        CallKind.FETCH,
    ]
    assert len(responses.calls) == len(kinds)
    assert [kind for kind, _ in gate.after] == kinds
    assert [status for _, status in gate.after][-4:] == [202, 202, 204, 200]


@responses.activate
def test_the_priority_is_the_works_unless_the_client_fixes_one(
    pge_config: PgeConfig, gate: RecordingGate
) -> None:
    responses.post(TOKEN_URL, json=TOKEN_ANSWER)
    client = PgeClient(pge_config, gate=gate)
    assert current_priority() == Priority.NOTIFIED
    client.refresh(refresh_token="r", now=NOW)
    with call_priority(Priority.SCHEDULED):
        client.refresh(refresh_token="r", now=NOW)
        with call_priority(Priority.CONSENT):
            client.refresh(refresh_token="r", now=NOW)
        PgeClient(pge_config, gate=gate, priority=Priority.CONSENT).refresh(
            refresh_token="r", now=NOW
        )
    assert [p for _, p in gate.before] == [
        Priority.NOTIFIED,
        Priority.SCHEDULED,
        Priority.CONSENT,
        Priority.CONSENT,
    ]


@responses.activate
def test_a_refused_call_never_reaches_pge(pge_config: PgeConfig) -> None:
    gate = RecordingGate(refuse=True)
    client = PgeClient(pge_config, gate=gate)
    with pytest.raises(BudgetExhausted) as caught:
        client.refresh(refresh_token="r", now=NOW)
    assert caught.value.retry_at.year == 2030
    assert len(responses.calls) == 0
    assert gate.after == []  # nothing was sent


@responses.activate
def test_a_failed_call_still_reports_to_the_gate(gated: PgeClient, gate) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{API_BASE}Batch/Subscription/{SID}", status=503, body="")
    with pytest.raises(PgeTransientError):
        gated.request_subscription_async(
            subscription_id=SID, published_min=1, published_max=2, access_token="t"
        )
    assert gate.after == [(CallKind.DATA_REQUEST, 503)]


def test_a_refused_url_spends_no_budget(gated: PgeClient, gate) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PgeUrlRefused):
        gated.fetch(url="https://evil.example/Batch/Bulk/1", access_token="t")
    assert gate.before == []


@responses.activate
def test_the_seed_sdk_works_without_a_gate(cert_files) -> None:  # type: ignore[no-untyped-def]
    from gascap.pge.sdk import ClientCredentials

    responses.post(TOKEN_URL, json={"client_access_token": "cat-2", "expires_in": 3600})
    grant = ClientCredentials(
        {"client_key": "id", "client_secret_key": "secret"},
        {"crt": cert_files[0], "key": cert_files[1]},
        config=PgeConfig(
            api_base=API_BASE,
            token_url=TOKEN_URL,
            authorize_url="https://sharemydata.pge.example/myAuthorization",
            client_id="",
            client_secret="",
            client_cert="",
            client_key="",
        ),
    )
    answer = grant.get_client_access_token(TOKEN_URL)
    assert answer["status"] == 200, answer
    assert len(responses.calls) == 1


def test_the_gate_and_client_import_nothing_from_django_or_the_apps() -> None:
    import ast

    import gascap.pge.client
    import gascap.pge.gate

    for module in (gascap.pge.gate, gascap.pge.client):
        tree = ast.parse(Path(module.__file__).read_text())
        names = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        bad = [
            name
            for name in names
            if name.split(".")[0] in {"django", "customers", "ingest", "sandbox"}
            or name.startswith("gascap.pge_")
        ]
        assert bad == [], (module.__name__, bad)
