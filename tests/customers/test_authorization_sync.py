"""Revocation from our side and the daily Authorization poll (docs/reliability.md test 56)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses

from customers.authorization_sync import authorization_revoke, authorizations_poll
from customers.models import Authorization
from customers.services import AuthorizationUnavailable, access_token_for_subscription
from customers.tasks import authorizations_poll_task
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


def test_poll_applies_revoked_denied_expired_and_active(pge, customer, fixture_path):
    ids = ["90000001", "90000002", "90000003", "90000004"]
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
            authorization_entry_xml(
                fixture_path, subscription_id="90000003", expires_at=NOW - timedelta(days=1)
            ),
            authorization_entry_xml(fixture_path, subscription_id="90000004", status=1),
            authorization_entry_xml(fixture_path, subscription_id="90000005", status=1),
            authorization_entry_xml(fixture_path, subscription_id="90000099", status=1),
        ],
    )
    counts = authorizations_poll(now=NOW)
    assert counts == {"seen": 6, "applied": 5, "unknown": 1, "failed": 0}

    def status(pk: int) -> str:
        return Authorization.objects.get(pk=pk).status

    assert status(rows["90000001"].pk) == Authorization.Status.REVOKED
    assert status(rows["90000002"].pk) == Authorization.Status.REVOKED
    assert status(rows["90000003"].pk) == Authorization.Status.EXPIRED
    assert status(rows["90000004"].pk) == Authorization.Status.ACTIVE
    assert status(pending.pk) == Authorization.Status.ACTIVE
    revoked = Authorization.objects.get(pk=rows["90000001"].pk)
    assert revoked.refresh_token_encrypted == ""
    assert "revoked" in revoked.last_error
    assert "denied" in Authorization.objects.get(pk=rows["90000002"].pk).last_error
    assert Authorization.objects.get(pk=rows["90000004"].pk).access_token == "test-90000004"


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
