"""The allow-list: only PG&E's configured API base and token URL are ever sent a token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gascap.pge.errors import PgeUrlRefused
from gascap.pge.urls import UrlPolicy, published_param, published_params

BASE = "https://api.pge.example/GreenButtonConnect/espi/1_1/resource/"
TOKEN = "https://api.pge.example/datacustodian/oauth/v2/token"
POLICY = UrlPolicy(api_base=BASE, token_url=TOKEN)
BULK = BASE + "Batch/Bulk/50098?correlationID=4f1d0000-aaaa-bbbb-cccc-000000000001"


@pytest.mark.parametrize(
    "url",
    [
        BULK,
        BASE + "Batch/Subscription/90001/UsagePoint/70001?published-min=1&published-max=2",
        BASE + "Authorization",
        "HTTPS://API.PGE.EXAMPLE/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus",
        "https://api.pge.example:443/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1",
        TOKEN,
    ],
)
def test_pge_urls_are_allowed(url: str) -> None:
    assert POLICY.is_allowed(url)
    POLICY.check(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://evil.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1", "host"),
        ("https://api.pge.example.evil.example/GreenButtonConnect/espi/1_1/resource/x", "host"),
        ("https://api.pge.example@evil.example/GreenButtonConnect/espi/1_1/resource/x", "user"),
        ("https://evil.example@api.pge.example/GreenButtonConnect/espi/1_1/resource/x", "user"),
        ("https://api.pge.example\\@evil.example/GreenButtonConnect/espi/1_1/resource/", "bs"),
        ("https://api.pge.example/GreenButtonConnect\\espi/1_1/resource/x", "backslash"),
        ("http://api.pge.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1", "http"),
        ("https://api.pge.example:8443/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1", "port"),
        ("https://api.pge.example:/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1", "port"),
        ("https://api.pge.example./GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1", "dot"),
        ("https://api.pge.example/GreenButtonConnect/espi/1_1/resource/../../admin", "dots"),
        ("https://api.pge.example/GreenButtonConnect/espi/1_1/resource/%2e%2e/x", "encoded"),
        ("https://api.pge.example/GreenButtonConnect/espi/1_1/resource/a%2Fb", "encoded"),
        ("https://api.pge.example/GreenButtonConnect/espi/1_1/resource//x", "empty"),
        ("https://api.pge.example/GreenButtonConnect/espi/1_1/resourceX/Batch", "prefix"),
        ("https://api.pge.example/datacustodian/oauth/v2/token/x", "token path"),
        ("https://api.pge.example/other", "path"),
        ("https://127.0.0.1/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1", "ip"),
        ("https://[::1]/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1", "ipv6"),
        ("https://xn--pi-6ja.pge.example/GreenButtonConnect/espi/1_1/resource/", "punycode"),
        ("https://\u0430pi.pge.example/GreenButtonConnect/espi/1_1/resource/x", "cyrillic a"),
        ("https://api.pge.example/GreenButtonConnect/espi/1_1/resource/x#frag", "fragment"),
        ("https://api.pge.example/GreenButtonConnect/espi/1_1/resource/x y", "space"),
        ("//api.pge.example/GreenButtonConnect/espi/1_1/resource/x", "no scheme"),
        ("", "empty"),
    ],
)
def test_foreign_and_tricky_urls_are_refused(url: str, why: str) -> None:
    assert not POLICY.is_allowed(url), why
    with pytest.raises(PgeUrlRefused) as raised:
        POLICY.check(url)
    assert raised.value.code == "url_refused"


def test_a_non_default_port_must_match_exactly() -> None:
    policy = UrlPolicy(
        api_base="https://localhost:8443/GreenButtonConnect/espi/1_1/resource/",
        token_url="https://localhost:8443/datacustodian/oauth/v2/token",
    )
    assert policy.is_allowed("https://localhost:8443/GreenButtonConnect/espi/1_1/resource/x")
    assert not policy.is_allowed("https://localhost/GreenButtonConnect/espi/1_1/resource/x")
    assert not policy.is_allowed("https://localhost:443/GreenButtonConnect/espi/1_1/resource/x")


# --- property test: mutations of a valid URL -------------------------------------------------
# Each mutation either keeps the URL pointing at PG&E's base (harmless) or is one an attacker
# would use; the property is: accepted ⇔ no refusing mutation was applied.
SAFE_SCHEMES = ["https", "HTTPS", "Https"]
BAD_SCHEMES = ["http", "ftp", "file", "javascript", "httpss", "wss"]
SAFE_HOSTS = ["api.pge.example", "API.PGE.EXAMPLE", "Api.Pge.Example"]
BAD_HOSTS = [
    "api.pge.example.",
    "evil.example",
    "api.pge.example.evil.example",
    "evilapi.pge.example",
    "pge.example",
    "127.0.0.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "xn--pi-6ja.pge.example",
    "\u0430pi.pge.example",  # Cyrillic a
    "api.pge.example%2e",
    "api.pge.ex%61mple",
    "169.254.169.254",
]
SAFE_PORTS = ["", ":443"]
BAD_PORTS = [":80", ":8443", ":0", ":4430", ":", ":65536", ":443x"]
SAFE_SUFFIXES = [
    "Batch/Bulk/50098",
    "Batch/Subscription/90001/UsagePoint/70001",
    "Authorization/90001",
    "ReadServiceStatus",
    "",
    "Batch/Bulk/50098/",
]
BAD_PATH_MUTATIONS = [
    "../admin",
    "Batch/../../../x",
    "./Batch",
    "Batch/./Bulk",
    "%2e%2e/x",
    "%2E%2E%2Fx",
    "Batch%2fBulk",
    "Batch%5cBulk",
    "Batch\\Bulk",
    "Batch//Bulk",
    "..",
    "Batch/..",
]
SAFE_QUERIES = ["", "?correlationID=0000-1111", "?published-min=1&published-max=2", "?a=b@c"]
BAD_TAILS = ["#x", "#", "?q=1#frag"]
USERINFO = ["user@", "user:pass@", "api.pge.example@", "@", "a%40b@"]


@st.composite
def mutated_urls(draw: st.DrawFn) -> tuple[str, bool]:
    bad = False
    if draw(st.booleans()):
        scheme = draw(st.sampled_from(BAD_SCHEMES))
        bad = True
    else:
        scheme = draw(st.sampled_from(SAFE_SCHEMES))
    userinfo = ""
    if draw(st.integers(0, 4)) == 0:
        userinfo = draw(st.sampled_from(USERINFO))
        bad = True
    if draw(st.integers(0, 2)) == 0:
        host = draw(st.sampled_from(BAD_HOSTS))
        bad = True
    else:
        host = draw(st.sampled_from(SAFE_HOSTS))
    if draw(st.integers(0, 3)) == 0:
        port = draw(st.sampled_from(BAD_PORTS))
        bad = True
    else:
        port = draw(st.sampled_from(SAFE_PORTS))
    base_path = "/GreenButtonConnect/espi/1_1/resource/"
    if draw(st.integers(0, 5)) == 0:
        base_path = draw(
            st.sampled_from(
                ["/GreenButtonConnect/espi/1_1/", "/greenbuttonconnect/espi/1_1/resource/", "/"]
            )
        )
        bad = True
    if draw(st.integers(0, 2)) == 0:
        suffix = draw(st.sampled_from(BAD_PATH_MUTATIONS))
        bad = True
    else:
        suffix = draw(st.sampled_from(SAFE_SUFFIXES))
    query = draw(st.sampled_from(SAFE_QUERIES))
    tail = ""
    if draw(st.integers(0, 5)) == 0:
        tail = draw(st.sampled_from(BAD_TAILS))
        bad = True
    return f"{scheme}://{userinfo}{host}{port}{base_path}{suffix}{query}{tail}", not bad


@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_urls())
def test_allow_list_property(case: tuple[str, bool]) -> None:
    url, expected = case
    assert POLICY.is_allowed(url) is expected, url


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_after_the_base_never_escapes_it(tail: str) -> None:
    """Whatever follows the base, an accepted URL still names PG&E's host and base path."""
    url = BASE + tail
    if POLICY.is_allowed(url):
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        assert parts.hostname == "api.pge.example"
        assert parts.path.startswith("/GreenButtonConnect/espi/1_1/resource/")
        assert "\\" not in url and "/../" not in parts.path + "/"


# --- published-min / published-max -------------------------------------------------------------
def test_published_bounds_are_integer_epoch_seconds() -> None:
    moment = datetime(2024, 3, 10, 8, 0, tzinfo=UTC)
    pacific = moment.astimezone(timezone(timedelta(hours=-8)))
    assert published_param(1710057600) == "1710057600"
    assert published_param("1710057600") == "1710057600"
    assert published_param(moment) == "1710057600"
    assert published_param(pacific) == "1710057600"
    assert published_params(1, None) == {"published-min": "1"}
    assert published_params(None, None) == {}


@pytest.mark.parametrize("bad", ["2024-03-10T08:00:00Z", "-5", "", "12.5", -1])
def test_published_bounds_refuse_other_formats(bad: object) -> None:
    with pytest.raises(ValueError):
        published_param(bad)  # type: ignore[arg-type]


def test_published_bounds_refuse_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        published_param(datetime(2024, 3, 10, 8, 0))
