"""What PG&E's data says about a consent's usage points: their service kinds (electric/gas, from
the ESPI ServiceCategory; PG&E's Authorization resource does not say), the usage points the
Authorization did not list, and the re-consent that joins the earlier consent's customer
(PG&E issues a new subscription id on re-consent: docs/pge-protocol.md)."""

from __future__ import annotations

import logging

from django.db import transaction

from customers.models import Authorization, SubscriptionUsagePoint

logger = logging.getLogger(__name__)

Status = Authorization.Status


# ServiceCategory/kind codes (docs/espi-model.md §4.1): 0 electricity, 1 gas. PG&E's Authorization
# resource names the subscription, not its usage points' kinds (often not even the usage
# points), so rows start as "other" or are missing until data arrives.
_ESPI_SERVICE_KINDS = {
    0: SubscriptionUsagePoint.ServiceKind.ELECTRIC,
    1: SubscriptionUsagePoint.ServiceKind.GAS,
}


def subscription_usage_points_record_kinds(*, authorization_id: int, kinds: dict[str, int]) -> int:
    """Record the service kind PG&E's data gave each of the authorization's usage points
    (`kinds` maps usage point id -> ESPI ServiceCategory kind; ingest passes only usage
    points bound to this authorization by the fetch). A usage point the Authorization
    resource did not list is added: the data proves the consent covers it. Codes other than
    electricity/gas leave the kind as it is. An unknown authorization changes nothing.
    Returns how many rows were added or changed.

    The first data of a re-consent (a new subscription id) joins the customer whose earlier
    consent covered the same usage points (`authorization_customer_rejoin`)."""
    return subscription_usage_points_record_kinds_many(kinds={authorization_id: kinds})


def subscription_usage_points_record_kinds_many(*, kinds: dict[int, dict[str, int]]) -> int:
    """`subscription_usage_points_record_kinds` for several authorizations at once (`kinds`:
    authorization id -> usage point id -> code): a Bulk document binds 500 of them, and a
    handful of statements serve them all (one select of the rows, one insert, one update,
    the re-consent check in two selects) instead of several per usage point."""
    authorizations = {
        a.pk: a for a in Authorization.objects.filter(pk__in=list(kinds)).select_related("customer")
    }
    if not authorizations:
        return 0
    existing = {
        (row.authorization_id, row.usage_point_id): row
        for row in SubscriptionUsagePoint.objects.filter(authorization_id__in=list(authorizations))
    }
    added: list[SubscriptionUsagePoint] = []
    changed: list[SubscriptionUsagePoint] = []
    for authorization_id, per_usage_point in kinds.items():
        if authorization_id not in authorizations:
            continue
        for usage_point_id, code in per_usage_point.items():
            kind = _ESPI_SERVICE_KINDS.get(code, SubscriptionUsagePoint.ServiceKind.OTHER)
            row = existing.get((authorization_id, usage_point_id))
            if row is None:
                added.append(
                    SubscriptionUsagePoint(
                        authorization_id=authorization_id,
                        usage_point_id=usage_point_id,
                        service_kind=kind,
                    )
                )
            elif code in _ESPI_SERVICE_KINDS and row.service_kind != kind:
                row.service_kind = kind
                changed.append(row)
    if added:
        # A concurrent import of the same consent may add a row first: it stands.
        SubscriptionUsagePoint.objects.bulk_create(added, ignore_conflicts=True, batch_size=500)
    if changed:
        SubscriptionUsagePoint.objects.bulk_update(changed, ["service_kind"], batch_size=500)
    _customers_rejoin(
        [(authorizations[pk], list(points)) for pk, points in kinds.items() if pk in authorizations]
    )
    return len(added) + len(changed)


def _customers_rejoin(candidates: list[tuple[Authorization, list[str]]]) -> None:
    """`authorization_customer_rejoin` for several authorizations, its conditions checked for
    all of them at once; only an authorization that does move goes through it (rare)."""
    placeholders = [
        (authorization, usage_point_ids)
        for authorization, usage_point_ids in candidates
        if usage_point_ids
        and authorization.customer.display_name == f"Subscription {authorization.subscription_id}"
        and not authorization.customer.email
    ]
    if not placeholders:
        return
    consents: dict[int, int] = {}
    for customer_id in Authorization.objects.filter(
        customer_id__in=[a.customer_id for a, _ in placeholders]
    ).values_list("customer_id", flat=True):
        consents[customer_id] = consents.get(customer_id, 0) + 1
    placeholders = [(a, ids) for a, ids in placeholders if consents.get(a.customer_id) == 1]
    if not placeholders:
        return
    earlier = list(
        SubscriptionUsagePoint.objects.filter(
            usage_point_id__in=sorted({i for _, ids in placeholders for i in ids})
        )
        .exclude(authorization__status=Status.ACTIVE)
        .values_list("usage_point_id", "authorization__customer_id")
    )
    for authorization, usage_point_ids in placeholders:
        wanted = set(usage_point_ids)
        if any(
            point in wanted and customer_id != authorization.customer_id
            for point, customer_id in earlier
        ):
            authorization_customer_rejoin(
                authorization=authorization, usage_point_ids=usage_point_ids
            )


def authorization_customer_rejoin(
    *, authorization: Authorization, usage_point_ids: list[str]
) -> bool:
    """Give a re-consent's authorization the customer of the earlier consent it replaces.

    PG&E issues a new subscription id on re-consent (docs/pge-protocol.md: re-authorization
    cancels the old subscription), and the consent callback, knowing only that id, creates
    a placeholder customer. When this authorization is its customer's only one and an
    earlier, no longer ACTIVE authorization of another customer covers one of the same usage
    points (PG&E's usage point id is the service agreement), the authorization moves to that
    customer, so the customer's history (the old usage points and readings) and the new data
    are one customer's. The callback's placeholder customer is then removed.
    Returns True when the authorization moved.
    """
    if not usage_point_ids:
        return False
    placeholder = authorization.customer
    # Only the callback's placeholder (named after the subscription, no e-mail, no other
    # consent) is replaced: a customer an operator named or invited keeps its consent.
    if (
        placeholder.display_name != f"Subscription {authorization.subscription_id}"
        or placeholder.email
        or Authorization.objects.filter(customer=placeholder).exclude(pk=authorization.pk).exists()
    ):
        return False
    earlier = (
        SubscriptionUsagePoint.objects.filter(usage_point_id__in=usage_point_ids)
        .exclude(authorization__customer=placeholder)
        .exclude(authorization__status=Status.ACTIVE)
        .select_related("authorization__customer")
        .order_by("-authorization__created_at")
        .first()
    )
    if earlier is None:
        return False
    with transaction.atomic():
        authorization.customer = earlier.authorization.customer
        authorization.save(update_fields=["customer", "updated_at"])
        placeholder.delete()
    logger.info(
        "Authorization %s (re-consent) joined customer %s",
        authorization.pk,
        authorization.customer_id,
    )
    return True
