"""The grammar of PG&E resource URLs (`gascap.pge.resources`): one strict pattern per kind,
checked against an independent model with hypothesis, and path tricks refused wherever they
are put (issue 10, part 4)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gascap.pge import resources
from gascap.pge.resources import ResourceRefused, resource_parse
from gascap.pge.urls import UrlPolicy

BASE = "https://api.pge.example/GreenButtonConnect/espi/1_1/resource/"
POLICY = UrlPolicy(api_base=BASE, token_url="https://api.pge.example/datacustodian/oauth/v2/token")
UUID = "0b2479f3-eec7-4a15-b46b-8f90c647e21e"  # from PG&E's real notification


def accepted(url: str) -> resources.ResourceUrl | None:
    """What gascap does with a URL before any request: allow-list, then grammar."""
    if not POLICY.is_allowed(url):
        return None
    try:
        return resource_parse(url, api_base=BASE)
    except ResourceRefused:
        return None


@pytest.mark.parametrize(
    ("relative", "kind", "sid", "starts_request", "root"),
    [
        (f"Batch/Bulk/50916?correlationID={UUID}", "BULK", "", False, False),
        ("Batch/Bulk/50916", "BULK", "", True, False),
        ("Batch/Bulk/50916?published-min=1&published-max=2", "BULK", "", True, False),
        (f"Batch/Subscription/4095251?correlationID={UUID}",
         "SUBSCRIPTION", "4095251", False, True),
        ("Batch/Subscription/4095251", "SUBSCRIPTION", "4095251", True, True),
        ("Batch/Subscription/02661/UsagePoint/6345172663?published-min=1&published-max=2",
         "USAGE_POINT", "02661", False, True),
        ("Subscription/4095251/UsagePoint", "RESOURCE", "4095251", False, False),
        ("Subscription/4095251/UsagePoint/5391320451/MeterReading/"
         "TnpJNmJuVnNiRG96TmpBd09qRT06MQ==/IntervalBlock", "RESOURCE", "4095251", False, False),
        ("Subscription/02661/UsagePoint/6345172663/UsageSummary/1,337,670,000",
         "RESOURCE", "02661", False, False),
        ("ReadingType/MTY5Om51bGw6ODY0MDA6MQ==", "READING_TYPE", "", False, False),
        ("ReadingType/MTY5Om51bGw6ODY0MDA6MQ%3D%3D", "READING_TYPE", "", False, False),
        ("LocalTimeParameters/1", "READING_TYPE", "", False, False),
        ("Authorization", "AUTHORIZATION", "", False, False),
        ("Authorization/4095251", "AUTHORIZATION", "4095251", False, False),
    ],
)  # fmt: skip
def test_real_pge_hrefs_parse(relative, kind, sid, starts_request, root) -> None:
    """Hrefs as PG&E writes them in the real samples (tests/fixtures/pge_*.xml)."""
    parsed = accepted(BASE + relative)
    assert parsed is not None
    assert (parsed.kind, parsed.subscription_id) == (kind, sid)
    assert parsed.starts_request is starts_request
    assert parsed.subscription_root is root


# --- an independent model of the documented paths ---------------------------------------------

NAMES = [
    "Batch",
    "Bulk",
    "Subscription",
    "UsagePoint",
    "MeterReading",
    "IntervalBlock",
    "UsageSummary",
    "ElectricPowerUsageSummary",
    "ReadingType",
    "LocalTimeParameters",
    "Authorization",
    "RetailCustomer",
    "Customer",
    "IntervalReading",
]
IDS = ["50916", "4095251", "MjYyNjk0MDkxMA==", "1,436,684,400,000", "a_b-c", "x%3D"]
_ID_RE = re.compile(r"(?:[A-Za-z0-9_]|%(?:3[Dd]|2[BbCc]))(?:[A-Za-z0-9_=,+-]|%(?:3[Dd]|2[BbCc]))*")

ID = object()  # a position that takes any id


def _documented() -> dict[str, list[list[object]]]:
    resource = [["Subscription", ID, "UsagePoint"], ["Subscription", ID, "UsagePoint", ID]]
    for tail in (["MeterReading"], ["MeterReading", ID], ["MeterReading", ID, "IntervalBlock"]):
        resource.append(["Subscription", ID, "UsagePoint", ID, *tail])
    resource.append(["Subscription", ID, "UsagePoint", ID, "MeterReading", ID, "IntervalBlock", ID])
    for summary in ("UsageSummary", "ElectricPowerUsageSummary"):
        resource.append(["Subscription", ID, "UsagePoint", ID, summary])
        resource.append(["Subscription", ID, "UsagePoint", ID, summary, ID])
    return {
        "BULK": [["Batch", "Bulk", ID]],
        "SUBSCRIPTION": [["Batch", "Subscription", ID]],
        "USAGE_POINT": [["Batch", "Subscription", ID, "UsagePoint", ID]],
        "RESOURCE": resource,
        "READING_TYPE": [["ReadingType", ID], ["LocalTimeParameters", ID]],
        "AUTHORIZATION": [["Authorization"], ["Authorization", ID]],
    }


DOCUMENTED = _documented()


def model_kind(segments: list[str]) -> str | None:
    """The first documented shape the segments fit, in the grammar's order (a name is also a
    valid id, so `Batch/Subscription/{SID}` is tried before the shapes below it)."""
    for kind, shapes in DOCUMENTED.items():
        for shape in shapes:
            if len(shape) == len(segments) and all(
                (bool(_ID_RE.fullmatch(seg)) if want is ID else seg == want)
                for want, seg in zip(shape, segments, strict=True)
            ):
                return kind
    return None


SEGMENT = st.sampled_from(NAMES + IDS)


@st.composite
def near_documented(draw) -> list[str]:
    """A documented shape filled with ids, then perhaps one segment added, dropped or changed:
    most draws sit next to the grammar's edges, where a lax pattern would show."""
    shape = draw(st.sampled_from([s for shapes in DOCUMENTED.values() for s in shapes]))
    segments = [draw(st.sampled_from(IDS)) if part is ID else part for part in shape]
    edit = draw(st.sampled_from(["none", "append", "drop", "replace"]))
    index = draw(st.integers(min_value=0, max_value=len(segments) - 1))
    if edit == "append":
        segments.append(draw(SEGMENT))
    elif edit == "drop" and len(segments) > 1:
        del segments[index]
    elif edit == "replace":
        segments[index] = draw(SEGMENT)
    return segments


@given(st.one_of(near_documented(), st.lists(SEGMENT, min_size=1, max_size=9)))
def test_paths_are_accepted_exactly_when_the_model_documents_them(segments) -> None:
    url = BASE + "/".join(segments)
    parsed = accepted(url)
    expected = model_kind(segments)
    assert (parsed.kind if parsed else None) == expected, url


@given(
    st.sampled_from(
        [
            "Batch/Bulk/50916",
            "Batch/Subscription/4095251",
            "Batch/Subscription/02661/UsagePoint/6345172663",
            "Subscription/02661/UsagePoint/6345172663/MeterReading/ABC/IntervalBlock/1425715200",
            "Subscription/02661/UsagePoint/6345172663/UsageSummary/1,337,670,000",
            "ReadingType/MTY5Om51bGw6ODY0MDA6MQ==",
            "Authorization/4095251",
        ]
    ),
    st.sampled_from(
        [
            "..;",
            "/..;/",
            ";",
            ";jsessionid=1",
            ".",
            "/.",
            "/..",
            "/../",
            "%2e",
            "%2E%2E",
            "%252e",
            "%252E%252E%252F",
            "%2f",
            "%5c",
            "%25",
            "%00",
            "%0a",
            "%20",
            "//",
            "\\",
            "\u2025",
            "\uff0e",
        ]
    ),
    st.data(),
)
def test_path_tricks_are_refused_wherever_they_are_put(relative, trick, data) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(relative)))
    url = BASE + relative[:position] + trick + relative[position:]
    assert accepted(url) is None, url


PARAMS = ["correlationID", "published-min", "published-max", "correlationId", "redirect", "x"]
VALUES = [UUID, "1714521600", "", "%2e%2e", "2024-05-01T00:00:00Z", "a b", "12;3"]
_ALLOWED = {
    "BULK": {"correlationID", "published-min", "published-max"},
    "SUBSCRIPTION": {"correlationID", "published-min", "published-max"},
    "USAGE_POINT": {"published-min", "published-max"},
    "RESOURCE": {"published-min", "published-max"},
    "READING_TYPE": set(),
    "AUTHORIZATION": set(),
}
_VALID = {
    "correlationID": re.compile(r"[A-Za-z0-9-]{1,64}"),
    "published-min": re.compile(r"[0-9]{1,12}"),
    "published-max": re.compile(r"[0-9]{1,12}"),
}
PATHS = {
    "BULK": "Batch/Bulk/50916",
    "SUBSCRIPTION": "Batch/Subscription/4095251",
    "USAGE_POINT": "Batch/Subscription/4095251/UsagePoint/5391320451",
    "RESOURCE": "Subscription/4095251/UsagePoint/5391320451/MeterReading/ABC/IntervalBlock",
    "READING_TYPE": "ReadingType/ABC",
    "AUTHORIZATION": "Authorization/4095251",
}


def model_query_ok(kind: str, pairs: list[tuple[str, str]]) -> bool:
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names) or not set(names) <= _ALLOWED[kind]:
        return False
    if "correlationID" in names and len(names) > 1:
        return False
    return all(_VALID[n].fullmatch(v) for n, v in pairs)


@given(
    st.sampled_from(sorted(PATHS)),
    st.lists(st.tuples(st.sampled_from(PARAMS), st.sampled_from(VALUES)), max_size=4),
)
def test_only_the_documented_query_parameters_pass(kind, pairs) -> None:
    query = "&".join(f"{n}={v}" for n, v in pairs)
    url = BASE + PATHS[kind] + (f"?{query}" if query else "")
    parsed = accepted(url)
    assert (parsed is not None) == model_query_ok(kind, pairs), url
    if parsed is not None:
        assert parsed.kind == kind
        assert parsed.correlation_id == dict(pairs).get("correlationID", "")
