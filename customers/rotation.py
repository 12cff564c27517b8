"""Re-encrypting every stored token under the newest field-encryption key."""

from __future__ import annotations

from django.db import transaction

from customers import crypto
from customers.models import Authorization, ClientToken

_MODELS_FIELDS = (
    (Authorization, ("access_token_encrypted", "refresh_token_encrypted")),
    (ClientToken, ("access_token_encrypted",)),
)


def field_keys_rotate(*, batch_size: int = 500) -> dict[str, int]:
    """MultiFernet.rotate every non-empty token column; the bound payload is kept as is.

    One transaction per row under a row lock, so a refresh running at the same time is not
    overwritten with an older token. Raises TokenDecryptError when no configured key reads a
    value (nothing is changed for that row).
    """
    counts = {"rows": 0, "values": 0}
    for model, fields in _MODELS_FIELDS:
        pks = list(model.objects.order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(pks), batch_size):
            for pk in pks[start : start + batch_size]:
                with transaction.atomic():
                    row = model.objects.select_for_update().get(pk=pk)
                    changed = []
                    for field in fields:
                        value = getattr(row, field)
                        if value:
                            setattr(row, field, crypto.token_rotate(value))
                            changed.append(field)
                    if changed:
                        row.save(update_fields=changed)
                        counts["rows"] += 1
                        counts["values"] += len(changed)
    return counts
