"""Pipeline stage 1, notification → fetches: a stored BatchList processed into one fetch per
distinct allowed resource; hostile URLs refused and recorded, never contacted; coalescing,
poison, and task messages that carry ids only (docs/reliability.md tests 9-10, 22-23, 28)."""

from __future__ import annotations

import json
import random

import pytest

from ingest.models import Fetch, Notification
from tests.ingest.conftest import (
    SID,
    batchlist,
    bulk_url,
    subscription_url,
)
from tests.ingest.pipeline_steps import (
    process,
    stored,
)

pytestmark = pytest.mark.django_db


HOSTILE_URLS = [
    "https://attacker.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "http://api.pge.com/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://api.pge.com@attacker.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1",
    "https://user:pw@api.pge.com/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://api.pge.com.attacker.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1",
    "https://api.pge.com:8443/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://api.pge.com./GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://api.pge.com\\@attacker.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1",
    "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/..%2F..%2F..%2Fadmin",
    "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/../../../other/Batch/Bulk/1",
    "https://api.pge.com/GreenButtonConnect/espi/1_1/resourceX/Batch/Bulk/99999",
    "https://127.0.0.1/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://[::1]/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://xn--pge-xxa.com/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://API.PGE.COM%2e/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://api.pge.com/datacustodian/oauth/v2/token",
    "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/UnknownThing/1",
    "file:///etc/passwd",
]


def test_batchlist_becomes_one_fetch_per_distinct_resource(
    now, published, django_capture_on_commit_callbacks
):
    zero = bulk_url("00000000-0000-0000-0000-000000000000")
    body = batchlist(subscription_url(), bulk_url(), subscription_url(), zero)
    notification = stored(body, now)
    result = process(notification, now, django_capture_on_commit_callbacks)
    notification.refresh_from_db()
    assert notification.status == Notification.Status.PROCESSED
    assert notification.skipped_count == 1  # the all-zero correlation id placeholder
    rows = {f.url: f for f in Fetch.objects.all()}
    assert set(rows) == {subscription_url(), bulk_url()}
    assert rows[subscription_url()].kind == Fetch.Kind.SUBSCRIPTION
    assert rows[subscription_url()].subscription_id == SID
    assert rows[bulk_url()].kind == Fetch.Kind.BULK
    assert sorted(a[0] for a in published.of("ingest.fetch_run")) == sorted(
        f.pk for f in rows.values()
    )
    assert result.fetch_ids_queued


def test_hostile_urls_are_refused_recorded_and_never_contacted(
    now, published, pge, django_capture_on_commit_callbacks, client_token, authorization
):
    notification = stored(batchlist(*HOSTILE_URLS), now)
    process(notification, now, django_capture_on_commit_callbacks)
    refused = Fetch.objects.filter(status=Fetch.Status.REFUSED)
    assert refused.count() == len(HOSTILE_URLS)
    assert set(refused.values_list("reason", flat=True)) <= {"url_refused", "unsupported_resource"}
    assert published.of("ingest.fetch_run") == []
    published.drain()
    assert len(pge.calls) == 0


def test_allow_list_property_over_random_mutations(now):
    """docs/reliability.md test 22, in the pipeline's own words: a URL is accepted only when it is
    exactly under the API base; a few thousand random mutations of a good URL."""
    from gascap.pge.errors import PgeUrlRefused
    from ingest.pge_resources import url_check

    good = subscription_url()
    mutations = [
        lambda u: u.replace(
            "https://", random.choice(["http://", "https:/", "ftp://", "https:///"])
        ),
        lambda u: u.replace(
            "api.pge.com",
            random.choice(
                [
                    "api.pge.com.",
                    "apI.pge.co",
                    "api.pge.com@evil.test",
                    "evil.test#api.pge.com",
                    "api%2Epge.com",
                    "api.pge.com:444",
                    "0x7f.0.0.1",
                    "2130706433",
                    "[::ffff:7f00:1]",
                ]
            ),
        ),
        lambda u: u.replace(
            "/resource/",
            random.choice(
                [
                    "/resource/../",
                    "/resource/%2e%2e/",
                    "/resource%2F",
                    "/resource\\",
                    "/resource//",
                    "/Resource/",
                ]
            ),
        ),
        lambda u: u + random.choice(["#frag", " ", "\t", "\x00"]),
    ]
    rng = random.Random(7)
    random.seed(7)  # the mutations draw from the module RNG
    for _ in range(3000):
        url = good
        for mutate in rng.sample(mutations, rng.randint(1, len(mutations))):
            url = mutate(url)
        if url == good:
            continue
        with pytest.raises(PgeUrlRefused):
            url_check(url)
    url_check(good)


def test_processing_twice_does_nothing_the_second_time(
    now, published, django_capture_on_commit_callbacks
):
    notification = stored(batchlist(bulk_url()), now)
    process(notification, now, django_capture_on_commit_callbacks)
    again = process(notification, now, django_capture_on_commit_callbacks)
    assert again.status == Notification.Status.PROCESSED
    assert Fetch.objects.count() == 1
    assert len(published.of("ingest.fetch_run")) == 1


def test_fetches_coalesce_across_notifications(now, published, django_capture_on_commit_callbacks):
    first = stored(batchlist(bulk_url(), subscription_url()), now)
    second = stored(batchlist(subscription_url(), bulk_url()) + b" ", now)
    process(first, now, django_capture_on_commit_callbacks)
    result = process(second, now, django_capture_on_commit_callbacks)
    assert Fetch.objects.count() == 2
    assert result.fetches_coalesced == 2
    assert len(published.of("ingest.fetch_run")) == 2


def test_poisoned_notification_stops(now, settings, django_capture_on_commit_callbacks):
    notification = stored(batchlist(bulk_url()), now)
    Notification.objects.filter(pk=notification.pk).update(
        attempts=settings.GASCAP_INGEST_POISON_LIMIT
    )
    result = process(notification, now, django_capture_on_commit_callbacks)
    assert result.status == Notification.Status.POISONED
    assert Fetch.objects.count() == 0


def test_task_messages_carry_only_ids(now, published, django_capture_on_commit_callbacks):
    notification = stored(batchlist(subscription_url(), bulk_url()), now)
    process(notification, now, django_capture_on_commit_callbacks)
    for name, args, _options in published.messages:
        assert all(isinstance(a, int) for a in args), (name, args)
        assert json.dumps(args)
