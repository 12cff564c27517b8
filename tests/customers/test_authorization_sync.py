"""Revocation from our side and the daily Authorization poll (docs/reliability.md test 56)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses

from customers.authorization_sync import authorization_revoke, authorizations_poll
from customers.models import Authorization
from customers.tasks import authorizations_poll_task
from customers.tokens import AuthorizationUnavailable, access_token_for_subscription
from tests.customers.conftest import (
    API_BASE,
    NOW,
    SUBSCRIPTION_ID,
    authorization_entry_xml,
    authorization_feed_xml,
    authorization_make,
)

pytestmark = pytest.mark.django_db


def test_revoke_calls_delete_with_the_client_token_and_erases_tokens(pge, authorization):
    authorization_revoke(authorization_id=authorization.pk, now=NOW)
    assert pge.deletes == [f"{API_BASE}Authorization/{SUBSCRIPTION_ID}"]
    delete = next(c.request for c in pge.mock.calls if c.request.method == "DELETE")
    assert delete.headers["Authorization"] == "Bearer test-client-token-CCCC3333"
    stored = Authorization.objects.get()
    assert stored.status == Authorization.Status.REVOKED
    assert stored.access_token_encrypted == "" and stored.refresh_token_encrypted == ""
    assert stored.access_token is None
    with pytest.raises(AuthorizationUnavailable):
        access_token_for_subscription(subscription_id=SUBSCRIPTION_ID, now=NOW)


def test_revoke_failure_at_pge_leaves_the_row_untouched(pge, authorization):
    pge.delete_status = 500
    from gascap.pge.errors import PgeTransientError

    with pytest.raises(PgeTransientError):
        authorization_revoke(authorization_id=authorization.pk, now=NOW)
    stored = Authorization.objects.get()
    assert stored.status == Authorization.Status.ACTIVE
    assert stored.refresh_token is not None


def poll_answer(pge, fixture_path, entries: list[bytes]) -> None:
    pge.mock.add(
        responses.GET,
        f"{API_BASE}Authorization",
        body=authorization_feed_xml(entries),
        content_type="application/atom+xml",
    )


def test_poll_applies_revoked_denied_ended_period_and_active(pge, customer, fixture_path):
    ids = ["90000001", "90000002", "90000003", "90000004", "90000006"]
    rows = {
        sid: authorization_make(customer=customer, subscription_id=sid, access_token=f"test-{sid}")
        for sid in ids
    }
    pending = authorization_make(
        customer=customer, subscription_id="90000005", status=Authorization.Status.PENDING
    )
    poll_answer(
        pge,
        fixture_path,
        [
            authorization_entry_xml(fixture_path, subscription_id="90000001", status=0),
            authorization_entry_xml(fixture_path, subscription_id="90000002", status=2),
            # An access token that expired yesterday: the consent itself goes on.
            authorization_entry_xml(
                fixture_path, subscription_id="90000003", expires_at=NOW - timedelta(days=1)
            ),
            authorization_entry_xml(fixture_path, subscription_id="90000004", status=1),
            authorization_entry_xml(fixture_path, subscription_id="90000005", status=1),
            authorization_entry_xml(fixture_path, subscription_id="90000099", status=1),
            # A consent for 30 days that ended yesterday.
            authorization_entry_xml(
                fixture_path,
                subscription_id="90000006",
                authorized_period=(NOW - timedelta(days=31), timedelta(days=30)),
            ),
        ],
    )
    counts = authorizations_poll(now=NOW)
    assert counts == {"seen": 7, "applied": 6, "unknown": 1, "failed": 0}

    def row(pk: int) -> Authorization:
        return Authorization.objects.get(pk=pk)

    assert row(rows["90000001"].pk).status == Authorization.Status.REVOKED
    assert row(rows["90000002"].pk).status == Authorization.Status.REVOKED
    assert row(rows["90000003"].pk).status == Authorization.Status.ACTIVE
    assert row(rows["90000003"].pk).access_token == "test-90000003"
    assert row(rows["90000003"].pk).refresh_token is not None
    # What PG&E said about its access token is kept for the operator, nothing more.
    assert row(rows["90000003"].pk).expires_at == NOW - timedelta(days=1)
    assert row(rows["90000004"].pk).status == Authorization.Status.ACTIVE
    assert row(pending.pk).status == Authorization.Status.ACTIVE
    ended = row(rows["90000006"].pk)
    assert ended.status == Authorization.Status.EXPIRED
    assert ended.authorized_end == NOW - timedelta(days=1)
    assert ended.access_token is None and ended.refresh_token_encrypted == ""
    assert "authorized period ended" in ended.last_error
    revoked = row(rows["90000001"].pk)
    assert revoked.refresh_token_encrypted == ""
    assert "revoked" in revoked.last_error
    assert "denied" in row(rows["90000002"].pk).last_error
    assert row(rows["90000004"].pk).access_token == "test-90000004"


def test_pge_sample_authorization_keeps_the_consent_and_its_next_fetch_works(
    settings, pge_http, customer, fixture_path, tmp_path
):
    """PG&E's only real Authorization entry, unmodified: status 1, `expires_at` 2015-08-27
    (its access token, long expired), open-ended authorizedPeriod. Polled years later the
    consent stays ACTIVE with its tokens; the next fetch refreshes the token and gets data."""
    from gascap.pge.config import PGE_PRODUCTION_API_BASE, PGE_PRODUCTION_TOKEN_URL
    from gascap.pge_settings import pge_client
    from tests.customers.conftest import CLIENT_TOKEN_JSON, token_json

    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_text("test certificate placeholder\n")
    key.write_text("test key placeholder\n")
    settings.GASCAP_PGE_API_BASE = PGE_PRODUCTION_API_BASE
    settings.GASCAP_PGE_TOKEN_URL = PGE_PRODUCTION_TOKEN_URL
    settings.GASCAP_PGE_CLIENT_ID = "test-client-id"
    settings.GASCAP_PGE_CLIENT_SECRET = "test-client-secret-ZZZZ"
    settings.GASCAP_PGE_CLIENT_CERT, settings.GASCAP_PGE_CLIENT_KEY = str(cert), str(key)
    settings.GASCAP_PGE_CA_BUNDLE = None
    sample = fixture_path("pge_cmd_2015_authorization_entry.xml").read_bytes()
    pge_http.add(
        responses.GET,
        f"{PGE_PRODUCTION_API_BASE}Authorization",
        body=sample,
        content_type="application/atom+xml",
    )
    grants: list[str] = []

    def token(request):
        grant = request.body.split("grant_type=")[1].split("&")[0]
        grants.append(grant)
        if grant == "client_credentials":
            return 200, {"Content-Type": "application/json"}, CLIENT_TOKEN_JSON
        body = token_json(
            access_token="test-access-token-NEXT",
            subscription_id="0",
            api_base=PGE_PRODUCTION_API_BASE,
        )
        return 200, {"Content-Type": "application/json"}, body

    pge_http.add_callback(responses.POST, PGE_PRODUCTION_TOKEN_URL, callback=token)
    authorization = authorization_make(customer=customer, subscription_id="0")

    assert authorizations_poll(now=NOW) == {"seen": 1, "applied": 1, "unknown": 0, "failed": 0}
    stored = Authorization.objects.get(pk=authorization.pk)
    assert stored.status == Authorization.Status.ACTIVE
    assert stored.access_token and stored.refresh_token
    assert stored.pge_status == 1
    assert stored.authorized_start is not None and stored.authorized_end is None
    assert stored.expires_at.year == 2015  # the sample's access token expiry, shown only

    # The next fetch: the stored access token has expired, so it is refreshed, then used.
    later = NOW + timedelta(hours=2)
    access = access_token_for_subscription(subscription_id="0", now=later)
    assert access == "test-access-token-NEXT"
    assert grants == ["client_credentials", "refresh_token"]
    url = f"{PGE_PRODUCTION_API_BASE}Batch/Subscription/0/UsagePoint/0"
    feed = fixture_path("pge_cmd_2015_usagesummary_feed.xml").read_bytes()
    pge_http.add(responses.GET, url, body=feed, content_type="application/atom+xml")
    with pge_client().fetch(url=url, access_token=access) as document:
        assert document.status == 200
        assert document.read() == feed
    data_call = pge_http.calls[-1].request
    assert data_call.headers["Authorization"] == "Bearer test-access-token-NEXT"
    assert Authorization.objects.get(pk=authorization.pk).status == Authorization.Status.ACTIVE


def test_poll_does_not_revive_a_consent_that_needs_reconsent(pge, customer, fixture_path):
    row = authorization_make(customer=customer, status=Authorization.Status.NEEDS_RECONSENT)
    poll_answer(pge, fixture_path, [authorization_entry_xml(fixture_path, status=1)])
    authorizations_poll(now=NOW)
    assert Authorization.objects.get(pk=row.pk).status == Authorization.Status.NEEDS_RECONSENT


def test_poll_task_runs_the_poll(pge, authorization, fixture_path, time_machine):
    time_machine.move_to(NOW)
    poll_answer(pge, fixture_path, [authorization_entry_xml(fixture_path, status=0)])
    authorizations_poll_task.apply()
    assert Authorization.objects.get().status == Authorization.Status.REVOKED
