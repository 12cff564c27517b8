"""Operator account hardening (docs/reliability.md R8, tests 58-59): the admin wants a verified OTP
device when GASCAP_ADMIN_REQUIRE_OTP is on (production), production serves it only under the
configured path, and repeated failed logins lock the username+IP pair out, logged."""

from __future__ import annotations

import logging
import re
from base64 import b32decode, b32encode
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.foundation.test_settings import PRODUCTION_ENV, _field_key, _manage

ADMIN = "/" + django_settings.GASCAP_ADMIN_PATH
LOGIN = f"{ADMIN}login/"
PASSWORD = "op-test-pass-7Q"
WRONG = "op-wrong-pass-3Z"
OPERATOR_IP = "192.0.2.10"  # TEST-NET-1: documentation addresses only


def _code(key: bytes, *, offset_steps: int = 0) -> str:
    """The TOTP code an authenticator app shows now (or offset_steps periods away)."""
    return str(totp(key, step=30, t0=0, digits=6, drift=offset_steps)).zfill(6)


def _changelists() -> list[str]:
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    ]


def _post_login(
    client: Client, username: str, password: str, *, remote_addr: str = OPERATOR_IP, **form: str
):
    return client.post(
        LOGIN,
        {"username": username, "password": password, "next": ADMIN, **form},
        REMOTE_ADDR=remote_addr,
    )


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def operator(db) -> User:
    return User.objects.create_superuser("op-hardening", "op@example.test", PASSWORD)


@pytest.fixture
def device(operator: User) -> TOTPDevice:
    call_command("otp_enroll", operator.username, stdout=_Sink())
    return TOTPDevice.objects.get(user=operator)


@pytest.fixture
def otp_on(settings):
    settings.GASCAP_ADMIN_REQUIRE_OTP = True
    return settings


@pytest.fixture
def lockout_on(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 10
    settings.AXES_COOLOFF_TIME = timedelta(hours=1)
    return settings


class _Sink:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


# --- OTP ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_password_only_session_cannot_open_any_changelist(otp_on, operator, device):
    client = Client()
    client.force_login(operator)  # a password-verified session, no OTP device verified
    pages = _changelists()
    assert len(pages) >= 10  # customers, ingest, auth, otp, axes, beat
    for page in [ADMIN, *pages]:
        response = client.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith(LOGIN), page


@pytest.mark.django_db
def test_login_form_without_code_does_not_let_the_operator_in(otp_on, operator, device):
    client = Client()
    response = _post_login(client, operator.username, PASSWORD)
    assert response.status_code == 200  # the form again, with an error
    assert "otp_token" in response.content.decode()
    assert not _logged_in(client)
    assert client.get(reverse("admin:customers_customer_changelist")).status_code == 302


@pytest.mark.django_db
def test_wrong_code_does_not_let_the_operator_in(otp_on, operator, device):
    client = Client()
    wrong = str((int(_code(device.bin_key)) + 500_000) % 1_000_000).zfill(6)
    response = _post_login(client, operator.username, PASSWORD, otp_token=wrong)
    assert response.status_code == 200
    assert not _logged_in(client)


@pytest.mark.django_db
def test_password_and_current_code_open_the_changelists(otp_on, operator, device):
    client = Client()
    code = _code(device.bin_key)
    response = _post_login(client, operator.username, PASSWORD, otp_token=code)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == ADMIN
    for name in ("customers_customer", "customers_authorization", "ingest_fetch", "auth_user"):
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200, name
    # The same code cannot be replayed for a second login (django-otp remembers the step).
    other = Client()
    again = _post_login(other, operator.username, PASSWORD, otp_token=code)
    assert again.status_code == 200 and not _logged_in(other)


@pytest.mark.django_db
def test_staff_without_otp_device_cannot_get_in(otp_on, operator):
    client = Client()
    response = _post_login(client, operator.username, PASSWORD, otp_token="123456")
    assert response.status_code == 200
    assert not _logged_in(client)


@pytest.mark.django_db
def test_admin_pages_never_show_the_otp_secret(otp_on, operator, device):
    client = Client()
    _post_login(client, operator.username, PASSWORD, otp_token=_code(device.bin_key))
    page = client.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    secret = device.bin_key
    assert device.key not in body
    assert b32encode(secret).decode() not in body
    listing = client.get(reverse("admin:otp_totp_totpdevice_changelist")).content.decode()
    assert device.key not in listing and "otpauth" not in listing
    qr = client.get(reverse("admin:otp_totp_totpdevice_config", args=[device.pk]))
    assert qr.status_code == 403


@pytest.mark.django_db
def test_local_settings_keep_a_plain_password_login_and_say_so(operator):
    assert django_settings.GASCAP_ADMIN_REQUIRE_OTP is False  # test settings extend local
    client = Client()
    login_page = client.get(LOGIN).content.decode()
    assert "password-only login" in login_page
    assert "otp_token" not in login_page
    response = _post_login(client, operator.username, PASSWORD)
    assert response.status_code == 302
    assert client.get(reverse("admin:ingest_fetch_changelist")).status_code == 200


@pytest.mark.django_db
def test_otp_login_page_asks_for_the_code_and_keeps_the_time_zone_note(otp_on):
    page = Client().get(LOGIN).content.decode()
    assert 'name="otp_token"' in page
    assert "password-only login" not in page
    assert "times shown in" in page


# --- otp_enroll ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_otp_enroll_prints_a_uri_whose_secret_verifies(otp_on, operator):
    out = _Sink()
    call_command("otp_enroll", operator.username, stdout=out)
    uri = re.search(r"otpauth://\S+", out.text).group(0)
    parsed = urlparse(uri)
    assert parsed.netloc == "totp"
    query = parse_qs(parsed.query)
    assert query["issuer"] == ["gascap"]
    secret = query["secret"][0]
    assert f"secret base32: {secret}" in out.text
    device = TOTPDevice.objects.get(user=operator)
    assert device.confirmed
    # The code an authenticator app derives from the printed secret opens the admin.
    client = Client()
    key = b32decode(secret + "=" * (-len(secret) % 8))
    response = _post_login(client, operator.username, PASSWORD, otp_token=_code(key))
    assert response.status_code == 302
    assert client.get(reverse("admin:customers_customer_changelist")).status_code == 200


@pytest.mark.django_db
def test_otp_enroll_again_replaces_the_device(otp_on, operator, device):
    old_key = device.bin_key
    out = _Sink()
    call_command("otp_enroll", operator.username, stdout=out)
    assert "Replaced" in out.text
    devices = TOTPDevice.objects.filter(user=operator)
    assert devices.count() == 1
    assert devices.get().bin_key != old_key
    client = Client()
    response = _post_login(client, operator.username, PASSWORD, otp_token=_code(old_key))
    assert response.status_code == 200 and not _logged_in(client)


@pytest.mark.django_db
def test_otp_enroll_unknown_user_fails():
    with pytest.raises(CommandError, match="no-such-operator"):
        call_command("otp_enroll", "no-such-operator", stdout=_Sink())
    assert not TOTPDevice.objects.exists()


# --- Brute-force lockout ------------------------------------------------------------------


def _fail(client: Client, username: str, times: int, *, remote_addr: str = OPERATOR_IP):
    return [
        _post_login(client, username, WRONG, remote_addr=remote_addr).status_code
        for _ in range(times)
    ]


@pytest.mark.django_db
def test_ten_wrong_passwords_lock_out_even_the_right_one(lockout_on, operator, caplog):
    client = Client()
    with caplog.at_level(logging.WARNING):
        statuses = _fail(client, operator.username, 10)
    assert statuses[:9] == [200] * 9  # the login form again, with an error
    assert statuses[9] == 429  # the tenth failure locks
    lockout_lines = [r.getMessage() for r in caplog.records if r.name == "gascap.admin"]
    assert len(lockout_lines) == 1
    assert operator.username in lockout_lines[0] and OPERATOR_IP in lockout_lines[0]
    response = _post_login(client, operator.username, PASSWORD)
    assert response.status_code == 429
    assert not _logged_in(client)
    assert client.get(reverse("admin:customers_customer_changelist")).status_code == 302
    # What axes stores about the attempts never holds the password typed.
    for attempt in AccessAttempt.objects.all():
        assert WRONG not in attempt.post_data and PASSWORD not in attempt.post_data


@pytest.mark.django_db
def test_nine_wrong_passwords_do_not_lock(lockout_on, operator):
    client = Client()
    assert _fail(client, operator.username, 9) == [200] * 9
    assert _post_login(client, operator.username, PASSWORD).status_code == 302
    assert _logged_in(client)


@pytest.mark.django_db
def test_lockout_is_per_username_and_address(lockout_on, operator):
    _fail(Client(), operator.username, 10, remote_addr="198.51.100.7")
    # The operator, from their own address, still gets in.
    client = Client()
    assert _post_login(client, operator.username, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_lockout_ends_after_the_cool_off_and_axes_reset_ends_it_early(lockout_on, operator):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        _fail(Client(), operator.username, 10)
        clock.shift(timedelta(minutes=59))
        assert _post_login(Client(), operator.username, PASSWORD).status_code == 429
        clock.shift(timedelta(minutes=61))  # the refused attempt restarted the cool-off
        assert _post_login(Client(), operator.username, PASSWORD).status_code == 302
    _fail(Client(), operator.username, 10)
    assert _post_login(Client(), operator.username, PASSWORD).status_code == 429
    call_command("axes_reset_username", operator.username, stdout=_Sink())
    assert _post_login(Client(), operator.username, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_wrong_otp_codes_count_towards_the_lockout(lockout_on, otp_on, operator, device):
    client = Client()
    current = int(_code(device.bin_key))
    for n in range(10):
        wrong = str((current + 1000 + n) % 1_000_000).zfill(6)
        _post_login(client, operator.username, PASSWORD, otp_token=wrong)
    response = _post_login(client, operator.username, PASSWORD, otp_token=_code(device.bin_key))
    assert response.status_code == 429
    assert not _logged_in(client)


@pytest.mark.django_db
def test_axes_records_are_visible_to_superusers_only(lockout_on, operator):
    _fail(Client(), "op-someone-else", 3)
    superuser = Client()
    superuser.force_login(operator)
    page = superuser.get(reverse("admin:axes_accessattempt_changelist"))
    assert page.status_code == 200
    assert "op-someone-else" in page.content.decode()
    staff = User.objects.create_user("op-staff", password=PASSWORD, is_staff=True)
    plain_staff = Client()
    plain_staff.force_login(staff)
    assert plain_staff.get(reverse("admin:axes_accessattempt_changelist")).status_code == 403


# --- Production -----------------------------------------------------------------------------


def test_production_serves_the_admin_only_under_the_configured_path(tmp_path):
    env = {
        **PRODUCTION_ENV,
        "GASCAP_FIELD_ENCRYPTION_KEYS": _field_key(),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
    }
    code = (
        "from django.conf import settings as s;"
        "from django.test import Client;"
        "c = Client(HTTP_HOST='gascap.example.org');"
        "old = c.get('/admin/', secure=True).status_code;"
        "old_login = c.get('/admin/login/', secure=True).status_code;"
        "index = c.get('/operators/', secure=True);"
        "login = c.get('/operators/login/', secure=True);"
        "print(old, old_login, index.status_code, index['Location'], login.status_code,"
        " 'name=\"otp_token\"' in login.content.decode(), s.GASCAP_ADMIN_REQUIRE_OTP,"
        " s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds())"
    )
    result = _manage("shell", "--no-imports", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    old, old_login, index, location, login, otp_field, required, limit, cooloff = (
        result.stdout.split()
    )
    assert (old, old_login) == ("404", "404")
    assert index == "302" and location.startswith("/operators/login/")
    assert login == "200"
    assert otp_field == "True" and required == "True"
    assert (limit, cooloff) == ("10", "3600.0")


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "198.51.100.1", "192.0.2.10"),  # no proxy trusted: the header is the client's
        (1, "198.51.100.1", "198.51.100.1"),
        (1, "203.0.113.99, 198.51.100.1", "198.51.100.1"),  # left part forged by the client
        (2, "203.0.113.99, 198.51.100.1, 10.0.0.3", "198.51.100.1"),
        (2, "198.51.100.1", "192.0.2.10"),  # fewer hops than proxies: do not guess
    ],
)
def test_lockout_address_behind_trusted_proxies(settings, proxies, forwarded, expected):
    from django.test import RequestFactory

    from gascap.admin_site import client_ip_for_lockout

    settings.GASCAP_ADMIN_PROXY_COUNT = proxies
    request = RequestFactory().post(LOGIN, REMOTE_ADDR=OPERATOR_IP, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip_for_lockout(request) == expected


@pytest.mark.django_db
def test_forged_forwarded_for_does_not_escape_the_lockout(lockout_on, operator):
    lockout_on.GASCAP_ADMIN_PROXY_COUNT = 1
    client = Client()
    for n in range(10):
        client.post(
            LOGIN,
            {"username": operator.username, "password": WRONG},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 198.51.100.1",
        )
    response = client.post(
        LOGIN,
        {"username": operator.username, "password": PASSWORD},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.200, 198.51.100.1",
    )
    assert response.status_code == 429


# --- One answer for every failure (issue 11) -------------------------------------------------


def _page_without_csrf(response) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


@pytest.mark.django_db
def test_wrong_password_and_wrong_or_empty_code_answer_the_same(otp_on, operator, device):
    wrong_code = str((int(_code(device.bin_key)) + 500_000) % 1_000_000).zfill(6)
    answers = {
        "wrong password": _post_login(Client(), operator.username, WRONG, otp_token=wrong_code),
        "wrong password, no code": _post_login(Client(), operator.username, WRONG),
        "right password, empty code": _post_login(Client(), operator.username, PASSWORD),
        "right password, wrong code": _post_login(
            Client(), operator.username, PASSWORD, otp_token=wrong_code
        ),
    }
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 200)
    pages = {name: _page_without_csrf(r) for name, r in answers.items()}
    reference = pages["wrong password"]
    assert "authenticator code" in reference  # the one message names all three fields
    for name, page in pages.items():
        assert page == reference, name


@pytest.mark.django_db
def test_a_staff_user_without_a_device_answers_like_a_wrong_password(otp_on, operator):
    with_device = _post_login(Client(), operator.username, WRONG, otp_token="123456")
    without = _post_login(Client(), operator.username, PASSWORD, otp_token="123456")
    assert _page_without_csrf(with_device) == _page_without_csrf(without)


@pytest.mark.django_db
def test_every_kind_of_failure_counts_towards_the_lockout(lockout_on, otp_on, operator, device):
    client = Client()
    current = int(_code(device.bin_key))
    statuses = []
    for n in range(10):
        kind = n % 3
        if kind == 0:  # right password, empty code
            statuses.append(_post_login(client, operator.username, PASSWORD).status_code)
        elif kind == 1:  # right password, wrong code
            wrong = str((current + 7000 + n) % 1_000_000).zfill(6)
            statuses.append(
                _post_login(client, operator.username, PASSWORD, otp_token=wrong).status_code
            )
        else:  # wrong password
            statuses.append(_post_login(client, operator.username, WRONG).status_code)
    assert statuses == [200] * 9 + [429]
    attempt = AccessAttempt.objects.get(username=operator.username)
    assert attempt.failures_since_start == 10
    response = _post_login(client, operator.username, PASSWORD, otp_token=_code(device.bin_key))
    assert response.status_code == 429 and not _logged_in(client)


@pytest.mark.django_db
def test_a_right_password_for_a_non_staff_user_counts_and_answers_the_same(lockout_on, otp_on, db):
    User.objects.create_user("op-not-staff", password=PASSWORD, is_staff=False)
    wrong = _post_login(Client(), "op-not-staff", WRONG, otp_token="123456")
    right = _post_login(Client(), "op-not-staff", PASSWORD, otp_token="123456")
    assert _page_without_csrf(wrong) == _page_without_csrf(right)
    statuses = [_post_login(Client(), "op-not-staff", PASSWORD).status_code for _ in range(8)]
    assert statuses == [200] * 7 + [429]
