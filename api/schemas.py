"""Request and response shapes of the app API (pydantic, via django-ninja): the OpenAPI
document is generated from these, so the document and the code cannot drift apart."""

from __future__ import annotations

from datetime import datetime

from ninja import Schema
from pydantic import Field


class Problem(Schema):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    code: str = Field(description="stable machine-readable reason")
    detail: str | None = None
    instance: str | None = None


class ConsentSessionIn(Schema):
    external_id: str = Field(
        min_length=1, max_length=200, description="the app's own id for its user"
    )
    return_url: str = Field(
        min_length=1,
        max_length=2000,
        description="where the browser goes after consent; its origin must be allowed",
    )


class ConsentSessionOut(Schema):
    id: str = Field(description="the session's id")
    url: str = Field(description="single-use link that starts the PG&E consent")
    expires_at: datetime
