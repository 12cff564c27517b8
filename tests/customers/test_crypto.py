"""Tokens at rest: encrypted, bound to their row, rotatable (docs/reliability.md test 51)."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from customers.crypto import TokenDecryptError
from customers.models import Authorization, ClientToken
from tests.customers.conftest import ACCESS_TOKEN, REFRESH_TOKEN, authorization_make


def raw_token_columns(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608  (fixed table names)
        return repr(cursor.fetchall())


@pytest.mark.django_db
def test_raw_sql_shows_neither_token_nor_its_base64(authorization):
    dump = raw_token_columns("customers_authorization")
    for secret in (ACCESS_TOKEN, REFRESH_TOKEN):
        assert secret not in dump
        assert base64.b64encode(secret.encode()).decode().rstrip("=") not in dump
        assert base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=") not in dump
    reloaded = Authorization.objects.get(pk=authorization.pk)
    assert reloaded.access_token == ACCESS_TOKEN
    assert reloaded.refresh_token == REFRESH_TOKEN


@pytest.mark.django_db
def test_ciphertext_copied_into_another_row_does_not_decrypt(customer, authorization):
    other = authorization_make(
        customer=customer, subscription_id="90000002", access_token="test-other-token-CCCC"
    )
    Authorization.objects.filter(pk=other.pk).update(
        access_token_encrypted=authorization.access_token_encrypted
    )
    with pytest.raises(TokenDecryptError) as excinfo:
        _ = Authorization.objects.get(pk=other.pk).access_token
    assert ACCESS_TOKEN not in str(excinfo.value)


@pytest.mark.django_db
def test_ciphertext_moved_to_another_column_does_not_decrypt(authorization):
    Authorization.objects.filter(pk=authorization.pk).update(
        refresh_token_encrypted=authorization.access_token_encrypted
    )
    with pytest.raises(TokenDecryptError):
        _ = Authorization.objects.get(pk=authorization.pk).refresh_token


@pytest.mark.django_db
def test_wrong_key_raises_and_never_returns_ciphertext(settings, authorization):
    settings.GASCAP_FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(TokenDecryptError) as excinfo:
        _ = Authorization.objects.get(pk=authorization.pk).access_token
    assert authorization.access_token_encrypted not in str(excinfo.value)


@pytest.mark.django_db
def test_rotation_reencrypts_every_row_and_old_key_can_go(settings, field_keys, customer):
    first = authorization_make(customer=customer)
    second = authorization_make(
        customer=customer, subscription_id="90000002", access_token="test-second-token-DDDD"
    )
    client = ClientToken.objects.create(pk=ClientToken.SINGLETON_PK)
    client.token_write("access_token_encrypted", "test-client-token-EEEE")
    client.save()
    before = {
        pk: (a, r)
        for pk, a, r in Authorization.objects.values_list(
            "pk", "access_token_encrypted", "refresh_token_encrypted"
        )
    }

    old_key = field_keys[0]
    new_key = Fernet.generate_key().decode()
    settings.GASCAP_FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_field_keys")
    settings.GASCAP_FIELD_ENCRYPTION_KEYS = [new_key]

    for row in Authorization.objects.all():
        assert before[row.pk] != (row.access_token_encrypted, row.refresh_token_encrypted)
    assert Authorization.objects.get(pk=first.pk).access_token == ACCESS_TOKEN
    assert Authorization.objects.get(pk=first.pk).refresh_token == REFRESH_TOKEN
    assert Authorization.objects.get(pk=second.pk).access_token == "test-second-token-DDDD"
    assert ClientToken.objects.get().access_token == "test-client-token-EEEE"


@pytest.mark.django_db
def test_without_rotation_removing_the_old_key_loses_access(settings, field_keys, authorization):
    # The control for the rotation test: the old ciphertext really needs the old key.
    settings.GASCAP_FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(TokenDecryptError):
        _ = Authorization.objects.get(pk=authorization.pk).refresh_token


def test_dev_key_is_generated_once_with_private_permissions(settings, tmp_path):
    from customers import crypto

    key_file = tmp_path / "var" / "field-encryption.key"
    settings.GASCAP_FIELD_ENCRYPTION_KEYS = []
    settings.GASCAP_FIELD_ENCRYPTION_DEV_KEY_FILE = str(key_file)
    ciphertext = crypto.token_encrypt("test-value", binding="x:1", field="f")
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = key_file.read_text()
    assert crypto.token_decrypt(ciphertext, binding="x:1", field="f") == "test-value"
    assert key_file.read_text() == key


def test_deploy_check_fails_without_keys(settings):
    from customers.checks import check_field_encryption_keys

    settings.GASCAP_FIELD_ENCRYPTION_KEYS = []
    assert [m.id for m in check_field_encryption_keys()] == ["customers.E001"]
    settings.GASCAP_FIELD_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    assert [m.id for m in check_field_encryption_keys()] == ["customers.E002"]
    settings.GASCAP_FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert check_field_encryption_keys() == []
