"""The notification webhook: authentication, framing, caps, hostile XML, storage, duplicates
(docs/reliability.md tests 1-6, 10, 12-15, 28, 38)."""

from __future__ import annotations

import hashlib
import io
import logging
import socket
import threading
import time

import pytest
from django.core.handlers.wsgi import WSGIRequest
from django.db import OperationalError, transaction
from django.test import Client

from ingest import webhook
from ingest.models import Fetch, Notification
from tests.ingest.conftest import (
    ALL_SECRETS,
    NOTIFY_TOKEN,
    OLD_NOTIFY_TOKEN,
    batchlist,
    bulk_url,
    subscription_url,
)

URL = f"/pge/notify/{NOTIFY_TOKEN}/"
BODY = batchlist(subscription_url(), bulk_url())

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    # CSRF checks on, as in production: the webhook must be exempt.
    return Client(enforce_csrf_checks=True)


def post(client: Client, body: bytes, url: str = URL, **extra: str):
    return client.post(url, data=body, content_type="application/xml", **extra)


@pytest.fixture
def no_outbound(monkeypatch):
    """Records every Python-level outbound connection attempt (and refuses it)."""
    attempts: list[object] = []
    original = socket.socket.connect

    def connect(self, address):  # type: ignore[no-untyped-def]
        if self.family == socket.AF_UNIX:
            return original(self, address)
        attempts.append(address)
        raise OSError("outbound connection refused by the test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


def test_valid_notification_is_stored_then_queued_after_commit(
    client, published, django_capture_on_commit_callbacks, no_outbound
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(
            client, BODY, HTTP_AUTHORIZATION="Bearer should-not-be-stored", REMOTE_ADDR="10.9.8.7"
        )
        # Nothing is published before the transaction commits.
        assert published.messages == []
    assert response.status_code == 200
    row = Notification.objects.get()
    assert row.status == Notification.Status.RECEIVED
    assert bytes(row.body) == BODY
    assert row.sha256 == hashlib.sha256(BODY).hexdigest()
    assert row.remote_addr == "10.9.8.7"
    assert row.headers["CONTENT_TYPE"] == "application/xml"
    assert "HTTP_AUTHORIZATION" not in row.headers
    assert "should-not-be-stored" not in str(row.headers)
    for callback in callbacks:
        callback()
    assert published.of("ingest.notification_process") == [[row.pk]]
    assert no_outbound == []
    assert Fetch.objects.count() == 0  # the request path never fetches or plans fetches


def test_receipt_is_fast(client):
    timings = []
    for i in range(200):
        body = batchlist(bulk_url(f"5e1f7a2c-0000-4000-8000-{i:012d}"))
        started = time.perf_counter()
        assert post(client, body).status_code == 200
        timings.append(time.perf_counter() - started)
    timings.sort()
    assert timings[int(len(timings) * 0.95)] < 0.1


def test_duplicate_deliveries_are_recorded_but_start_no_work(
    client, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        statuses = [post(client, BODY).status_code for _ in range(20)]
    assert statuses == [200] * 20
    assert Notification.objects.filter(status=Notification.Status.RECEIVED).count() == 1
    duplicates = Notification.objects.filter(status=Notification.Status.DUPLICATE)
    assert duplicates.count() == 19
    original = Notification.objects.get(status=Notification.Status.RECEIVED)
    assert set(duplicates.values_list("duplicate_of", flat=True)) == {original.pk}
    assert len(published.of("ingest.notification_process")) == 1


def test_same_body_after_the_window_is_new_work(client, settings, published):
    settings.GASCAP_NOTIFY_DUPLICATE_WINDOW = 0
    assert post(client, BODY).status_code == 200
    time.sleep(0.01)
    assert post(client, BODY).status_code == 200
    assert Notification.objects.filter(status=Notification.Status.RECEIVED).count() == 2


@pytest.mark.parametrize(
    "url",
    [
        "/pge/notify/wrong-token/",
        f"/pge/notify/{NOTIFY_TOKEN[:-1]}/",
        f"/pge/notify/{NOTIFY_TOKEN}x/",
        "/pge/notify/%20/",
    ],
)
def test_wrong_token_is_404_and_writes_nothing(client, published, url):
    response = post(client, BODY, url=url)
    assert response.status_code == 404
    assert Notification.objects.count() == 0
    assert published.messages == []


def test_old_token_accepted_during_rotation_and_refused_after(client, settings):
    assert post(client, BODY, url=f"/pge/notify/{OLD_NOTIFY_TOKEN}/").status_code == 200
    settings.GASCAP_NOTIFY_TOKENS = [NOTIFY_TOKEN]
    other = batchlist(bulk_url("5e1f7a2c-0000-4000-8000-000000000777"))
    assert post(client, other, url=f"/pge/notify/{OLD_NOTIFY_TOKEN}/").status_code == 404
    assert Notification.objects.count() == 1


def test_tokens_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = webhook.hmac.compare_digest

    def spy(a, b):  # type: ignore[no-untyped-def]
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhook.hmac, "compare_digest", spy)
    assert webhook.token_matches("guess", ["first-token", "second-token"]) is False
    # Every accepted token is compared (no early exit), each with compare_digest.
    assert [b for _, b in calls] == [b"first-token", b"second-token"]
    calls.clear()
    assert webhook.token_matches("first-token", ["first-token", "second-token"]) is True
    assert len(calls) == 2


def test_basic_credentials_when_configured(client, settings, published):
    import base64

    settings.GASCAP_NOTIFY_BASIC_CREDENTIALS = ["pge:new-pass", "pge:old-pass"]
    good = "Basic " + base64.b64encode(b"pge:old-pass").decode()
    bad = "Basic " + base64.b64encode(b"pge:guess").decode()
    assert post(client, BODY, HTTP_AUTHORIZATION=bad).status_code == 401
    assert post(client, BODY).status_code == 401
    assert post(client, BODY, HTTP_AUTHORIZATION="Basic !!!").status_code == 401
    assert Notification.objects.count() == 0
    assert post(client, BODY, HTTP_AUTHORIZATION=good).status_code == 200
    assert Notification.objects.count() == 1


def test_get_and_put_are_405(client):
    assert client.get(URL).status_code == 405
    assert client.put(URL, data=BODY, content_type="application/xml").status_code == 405
    assert Notification.objects.count() == 0


def test_empty_body_is_400(client):
    assert post(client, b"").status_code == 400
    assert post(client, b"   \n").status_code == 400
    assert Notification.objects.count() == 0


def test_non_xml_body_is_400_and_recorded_as_rejected(client, published):
    response = post(client, b"hello, this is not XML")
    assert response.status_code == 400
    row = Notification.objects.get()
    assert row.status == Notification.Status.REJECTED
    assert row.reason == "malformed"
    assert published.messages == []


def test_other_xml_is_400_not_batchlist(client):
    response = post(client, b'<feed xmlns="http://www.w3.org/2005/Atom"/>')
    assert response.status_code == 400
    assert Notification.objects.get().reason == "not_batchlist"


def test_compressed_body_is_415(client):
    response = post(client, BODY, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 415
    assert Notification.objects.filter(status=Notification.Status.RECEIVED).count() == 0


def _raw_request(stream: io.BytesIO, content_length: str | None, **meta: str) -> WSGIRequest:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": URL,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.input": stream,
        "wsgi.url_scheme": "http",
        "CONTENT_TYPE": "application/xml",
        "REMOTE_ADDR": "127.0.0.1",
        **meta,
    }
    if content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    return WSGIRequest(environ)


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size: int | None = -1) -> bytes:
        chunk = super().readline(size)
        self.bytes_read += len(chunk)
        return chunk


def test_oversize_with_content_length_is_413_without_reading(settings):
    body = b"x" * (300 * 1024)
    stream = CountingStream(body)
    response = webhook.notification_webhook(_raw_request(stream, str(len(body))), NOTIFY_TOKEN)
    assert response.status_code == 413
    assert stream.bytes_read == 0  # refused on the header alone
    assert Notification.objects.count() == 0


def test_lying_content_length_reads_only_what_was_declared():
    body = BODY + b"<!-- trailing junk -->" * 50_000
    stream = CountingStream(body)
    response = webhook.notification_webhook(_raw_request(stream, str(len(BODY))), NOTIFY_TOKEN)
    assert response.status_code == 200
    assert stream.bytes_read == len(BODY)
    assert bytes(Notification.objects.get().body) == BODY


def test_view_never_reads_past_the_cap(settings):
    settings.GASCAP_NOTIFY_MAX_BODY_BYTES = 1000
    body = b"<a>" + b"y" * 5000 + b"</a>"
    stream = CountingStream(body)
    # A Content-Length under the cap but a longer body: only the declared bytes are read.
    response = webhook.notification_webhook(_raw_request(stream, "900"), NOTIFY_TOKEN)
    assert stream.bytes_read <= 1001
    assert response.status_code == 400  # 900 bytes of a cut document are malformed


def test_chunked_without_length_is_411():
    stream = CountingStream(BODY)
    request = _raw_request(stream, None, HTTP_TRANSFER_ENCODING="chunked")
    assert webhook.notification_webhook(request, NOTIFY_TOKEN).status_code == 411
    assert stream.bytes_read == 0


def test_batchlist_without_resources_is_400(client):
    body = b'<ns0:BatchList xmlns:ns0="http://naesb.org/espi"></ns0:BatchList>'
    assert post(client, body).status_code == 400
    assert Notification.objects.get().reason == "empty"


def test_too_many_resources_is_413(client, settings):
    settings.GASCAP_NOTIFY_MAX_RESOURCES = 3
    body = batchlist(*(bulk_url(f"5e1f7a2c-0000-4000-8000-{i:012d}") for i in range(4)))
    assert post(client, body).status_code == 413
    assert Notification.objects.get().reason == "too_many"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ns0:BatchList xmlns:ns0="http://naesb.org/espi"><ns0:resources>&lol9;</ns0:resources>
</ns0:BatchList>"""


def _quadratic() -> bytes:
    entity = "A" * 50_000
    refs = "&a;" * 1_500  # 4.5 KB of references, kept under the 256 KiB cap
    return (
        f'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "{entity}">]>'
        f'<ns0:BatchList xmlns:ns0="http://naesb.org/espi"><ns0:resources>{refs}'
        "</ns0:resources></ns0:BatchList>"
    ).encode()


@pytest.mark.parametrize("body", [BILLION_LAUGHS, _quadratic()], ids=["billion", "quadratic"])
def test_entity_bombs_are_refused_fast_and_recorded(client, published, body):
    # CPU time, not wall time: an expansion is work this process would do, and a loaded
    # machine stretches wall time without any more work being done.
    started = time.process_time()
    response = post(client, body)
    elapsed = time.process_time() - started
    assert response.status_code == 400
    assert elapsed < 0.1
    row = Notification.objects.get()
    assert row.status == Notification.Status.REJECTED
    assert row.reason == "dtd"
    assert row.sha256 == hashlib.sha256(body).hexdigest()
    assert bytes(row.body) == body[:4096]
    assert row.body_size == len(body)
    assert published.messages == []


def test_local_xxe_canary_appears_nowhere(client, published, tmp_path, caplog):
    canary = "CANARY-7f3a9c-must-not-leak"
    secret_file = tmp_path / "canary.txt"
    secret_file.write_text(canary)
    body = (
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{secret_file}">]>'
        '<ns0:BatchList xmlns:ns0="http://naesb.org/espi"><ns0:resources>&xxe;'
        "</ns0:resources></ns0:BatchList>"
    ).encode()
    with caplog.at_level(logging.DEBUG):
        response = post(client, body)
    assert response.status_code == 400
    assert canary not in response.content.decode()
    for row in Notification.objects.all():
        assert canary.encode() not in bytes(row.body)
        assert canary not in row.error + row.reason + str(row.headers)
    assert canary not in caplog.text
    assert canary not in repr(published.messages)


@pytest.mark.parametrize(
    "template",
    [
        '<!DOCTYPE x SYSTEM "http://127.0.0.1:{port}/evil.dtd">{batch}',
        '<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p.dtd"> %p;]>{batch}',
        '<!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:{port}/e">]>{batch}',
    ],
    ids=["external-dtd", "parameter-entity", "external-entity"],
)
def test_remote_xxe_is_refused_and_never_connects(client, attacker_listener, template):
    port, connections = attacker_listener
    batch = batchlist(subscription_url()).decode().split("?>", 1)[1]
    body = template.format(port=port, batch=batch).encode()
    assert post(client, body).status_code == 400
    assert connections.settled() == []


def test_the_attacker_listener_sees_connections_made_before_it_settles(attacker_listener):
    """The absence checks here can fail: connections made before `settled()` are all seen."""
    port, connections = attacker_listener
    for _ in range(3):
        socket.create_connection(("127.0.0.1", port)).close()
    assert len(connections.settled()) == 3


def test_xinclude_and_schema_location_are_inert(
    client, attacker_listener, published, django_capture_on_commit_callbacks
):
    port, connections = attacker_listener
    body = (
        '<ns0:BatchList xmlns:ns0="http://naesb.org/espi" '
        'xmlns:xi="http://www.w3.org/2001/XInclude" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="http://naesb.org/espi http://127.0.0.1:{port}/espi.xsd">'
        f'<xi:include href="http://127.0.0.1:{port}/x.xml"/>'
        f"<ns0:resources>{bulk_url()}</ns0:resources></ns0:BatchList>"
    ).encode()
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, body).status_code == 200
    published.drain()  # processing fails to fetch without a token; it must not connect
    assert connections.settled() == []


def test_database_outage_is_503_fast_without_traceback(client, monkeypatch, published):
    def down(**kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("connection to server failed: Connection refused")

    monkeypatch.setattr(webhook, "notification_receive", down)
    started = time.perf_counter()
    response = post(client, BODY)
    assert response.status_code == 503
    assert time.perf_counter() - started < 2
    assert b"Traceback" not in response.content
    assert b"Connection refused" not in response.content
    assert published.messages == []


def test_broker_outage_does_not_fail_the_request(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    from celery import current_app

    def broker_down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(current_app, "send_task", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, BODY)
    assert response.status_code == 200
    # Committed and left RECEIVED for the sweeper.
    assert Notification.objects.get().status == Notification.Status.RECEIVED


def test_rolled_back_receipt_publishes_nothing(published, django_capture_on_commit_callbacks):
    from django.utils import timezone

    from ingest.notifications import notification_receive

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            notification_receive(body=BODY, headers={}, remote_addr=None, now=timezone.now())
            raise RuntimeError("rollback")
    assert callbacks == []
    assert published.messages == []
    assert Notification.objects.count() == 0


def test_secrets_never_logged(client, caplog):
    with caplog.at_level(logging.DEBUG):
        post(client, BODY)
        post(client, b"not xml")
        post(client, BODY, HTTP_CONTENT_ENCODING="gzip")
        post(client, b"x" * (300 * 1024))
        client.get(URL)
    for secret in ALL_SECRETS:
        assert secret not in caplog.text


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_make_one_unit_of_work(published):
    from django.db import connection

    results: list[int] = []

    def deliver() -> None:
        try:
            results.append(post(Client(), BODY).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 8
    assert Notification.objects.count() == 8
    # Concurrent first deliveries may each be RECEIVED; their fetches still coalesce.
    published.drain()
    assert Fetch.objects.filter(url=subscription_url()).count() == 1


def test_headers_carrying_the_secret_path_are_not_stored(client):
    assert post(client, BODY, HTTP_X_ORIGINAL_URI=URL, HTTP_X_REQUEST_ID="abc").status_code == 200
    headers = Notification.objects.get().headers
    assert "HTTP_X_ORIGINAL_URI" not in headers
    assert headers["HTTP_X_REQUEST_ID"] == "abc"
    assert NOTIFY_TOKEN not in str(headers)
