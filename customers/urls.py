"""URLs of the consent flow, plus the paths PG&E's 2015 seed registered (`/Goto_login`,
`/OAuthCallback`) so an existing registration keeps working."""

from __future__ import annotations

from django.urls import URLPattern, path

from customers import views

app_name = "customers"

urlpatterns: list[URLPattern] = [
    path("consent/start/", views.consent_start, name="consent_start"),
    path("consent/session/<str:token>/", views.consent_session_start, name="consent_session"),
    path("consent/portal/", views.consent_portal, name="consent_portal"),
    path("consent/callback/", views.consent_callback, name="consent_callback"),
    path("consent/done/<uuid:public_id>/", views.consent_done, name="consent_done"),
    path("Goto_login", views.consent_start, name="seed_goto_login"),
    path("OAuthCallback", views.consent_callback, name="seed_oauth_callback"),
]
