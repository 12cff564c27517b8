"""`gascap.pge_settings`: the Django side's PgeConfig comes from settings.GASCAP_PGE_*."""

from __future__ import annotations

from django.test import override_settings

from gascap.pge_settings import pge_client, pge_config

QA_BASE = "https://apiqa.pge.example/GreenButtonConnect/espi/1_1/resource"


@override_settings(
    GASCAP_PGE_API_BASE=QA_BASE,
    GASCAP_PGE_TOKEN_URL="https://apiqa.pge.example/datacustodian/test/oauth/v2/token",
    GASCAP_PGE_CA_BUNDLE="",
    GASCAP_PGE_CLIENT_SECRET="settings-secret-81c2",
    GASCAP_PGE_MAX_BODY_BYTES=12345,
    GASCAP_PGE_LEGACY_CONSENT=True,
)
def test_config_follows_settings() -> None:
    config = pge_config()
    assert config.api_base == QA_BASE + "/"
    assert config.ca_bundle is None  # empty setting: the system trust store
    assert config.max_body_bytes == 12345
    assert config.legacy_consent is True
    assert "settings-secret-81c2" not in repr(config)
    client = pge_client()
    assert client.is_allowed_url(QA_BASE + "/Batch/Bulk/50098")
    assert client.is_allowed_url("https://apiqa.pge.example/datacustodian/test/oauth/v2/token")
    assert not client.is_allowed_url("https://api.pge.com/GreenButtonConnect/espi/1_1/resource/x")
    assert "clientId=" in client.authorize_url(state="s")
