"""PG&E-shaped access documents: the Authorization entry and feed (periods in milliseconds,
`expires_at` the access token's expiry in seconds, `resourceURI` `.../resource/Subscription/{id}`,
all like PG&E's 2015 sample), ServiceStatus and the BatchList notification body
(docs/pge-protocol.md "Notifications"). Written as text, like `sandbox.feeds`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from sandbox.feeds import ESPI, Hrefs, atom_entry, simple_feed


@dataclass(frozen=True)
class AuthorizationView:
    """What an Authorization entry shows. Periods in milliseconds, like PG&E (2015 sample)."""

    subscription_id: str
    status: int
    authorized_start_ms: int
    authorized_duration_ms: int
    published_start_ms: int
    published_duration_ms: int
    expires_at: int  # epoch seconds: the subscription's current access token's expiry
    scope: str
    updated: int


def authorization_entry(hrefs: Hrefs, auth: AuthorizationView) -> str:
    content = (
        f'            <ns0:Authorization xmlns:ns0="{ESPI}">\n'
        "                <ns0:authorizedPeriod>\n"
        f"                    <ns0:duration>{auth.authorized_duration_ms}</ns0:duration>\n"
        f"                    <ns0:start>{auth.authorized_start_ms}</ns0:start>\n"
        "                </ns0:authorizedPeriod>\n"
        "                <ns0:publishedPeriod>\n"
        f"                    <ns0:duration>{auth.published_duration_ms}</ns0:duration>\n"
        f"                    <ns0:start>{auth.published_start_ms}</ns0:start>\n"
        "                </ns0:publishedPeriod>\n"
        f"                <ns0:status>{auth.status}</ns0:status>\n"
        f"                <ns0:expires_at>{auth.expires_at}</ns0:expires_at>\n"
        f"                <ns0:scope>{escape(auth.scope)}</ns0:scope>\n"
        "                <ns0:token_type>Bearer</ns0:token_type>\n"
        f"                <ns0:resourceURI>{escape(hrefs.subscription(auth.subscription_id))}"
        "</ns0:resourceURI>\n"
        f"                <ns0:authorizationURI>{escape(hrefs.authorization(auth.subscription_id))}"
        "</ns0:authorizationURI>\n"
        "            </ns0:Authorization>\n"
    )
    return atom_entry(
        self_href=hrefs.authorization(auth.subscription_id),
        up_href=hrefs.authorization(),
        title="Authorization",
        stamp=auth.updated,
        content=content,
    )


def authorization_feed(*, api_base: str, auths: list[AuthorizationView], stamp: int) -> bytes:
    hrefs = Hrefs(api_base)
    return simple_feed(
        self_href=hrefs.authorization(),
        stamp=stamp,
        entries=[authorization_entry(hrefs, a) for a in auths],
    )


def service_status(*, up: bool) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ns0:ServiceStatus xmlns:ns0="{ESPI}">\n'
        f"    <ns0:currentStatus>{1 if up else 0}</ns0:currentStatus>\n"
        "</ns0:ServiceStatus>\n"
    ).encode()


def batchlist(urls: Iterable[str]) -> bytes:
    """The notification body PG&E POSTs (docs/pge-protocol.md "Notifications")."""
    resources = "".join(f"  <ns0:resources>{escape(url)}</ns0:resources>\n" for url in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ns0:BatchList xmlns:ns0="{ESPI}">\n{resources}</ns0:BatchList>\n'
    ).encode()
