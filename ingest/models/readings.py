"""Reading storage: usage points, meter readings (series), reading types, interval readings,
revisions and usage summaries.

A series is a MeterReading of a UsagePoint *with its ReadingType*: unit, multiplier and flow
direction are part of its identity, so delivered (flowDirection 1) and received (19) energy
never share a series (docs/pge-protocol.md, "The data feed"). A reading is unique on (series, start,
duration) and keeps the raw integer PG&E sent; the scaled value is exact (Decimal). Cost is kept
in 10^-5 of the currency, as sent, whatever the energy multiplier (docs/espi-model.md §6).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from gascap.pge.espi.codes import reading_type_describe

__all__ = [
    "IntervalReading",
    "MeterReading",
    "ReadingRevision",
    "ReadingType",
    "UsagePoint",
    "UsageSummary",
]

COST_SCALE = -5  # ESPI money is an integer count of 10^-5 currency units


def _last_segment(href: str) -> str:
    return href.rstrip("/").rsplit("/", 1)[-1]


class UsagePoint(models.Model):
    """The metering point (a PG&E service agreement), identified by its self href.

    It belongs to the authorization whose subscription fetched it (and through it to the
    customer): the binding comes from the fetch, never from the hrefs inside a document
    (docs/espi.md, "Which usage points a document may write"). None for files imported by
    an operator (`import_espi`). A re-consent gets a new subscription id, hence new usage
    point hrefs under the new authorization of the same customer; the old rows keep theirs.
    """

    href = models.CharField(max_length=500, unique=True)
    authorization = models.ForeignKey(
        "customers.Authorization",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="data_usage_points",
    )
    usage_point_id = models.CharField(max_length=200, db_index=True)
    # ServiceCategory/kind: 0 electricity, 1 gas, 2 water (None when the document lacked it).
    service_kind = models.SmallIntegerField(null=True, blank=True)
    status = models.SmallIntegerField(null=True, blank=True)
    # LocalTimeParameters as sent: informational only, PG&E days are America/Los_Angeles.
    local_time = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["usage_point_id"]

    def __str__(self) -> str:
        return f"UsagePoint {self.usage_point_id}"


class ReadingType(models.Model):
    """A ReadingType's codes, raw integers (the ESPI enumerations are open)."""

    href = models.CharField(max_length=500)
    # Every identity field in a canonical text: two ReadingTypes with one href but different
    # codes (a re-issued unit or multiplier) stay distinct.
    signature = models.CharField(max_length=400)
    uom = models.IntegerField(null=True, blank=True)
    power_of_ten_multiplier = models.SmallIntegerField(null=True, blank=True)
    flow_direction = models.SmallIntegerField(null=True, blank=True)
    kind = models.SmallIntegerField(null=True, blank=True)
    interval_length = models.IntegerField(null=True, blank=True)
    accumulation_behaviour = models.SmallIntegerField(null=True, blank=True)
    commodity = models.SmallIntegerField(null=True, blank=True)
    currency = models.SmallIntegerField(null=True, blank=True)
    data_qualifier = models.SmallIntegerField(null=True, blank=True)
    default_quality = models.SmallIntegerField(null=True, blank=True)
    time_attribute = models.SmallIntegerField(null=True, blank=True)
    measuring_period = models.SmallIntegerField(null=True, blank=True)
    phase = models.IntegerField(null=True, blank=True)
    tou = models.SmallIntegerField(null=True, blank=True)
    cpp = models.SmallIntegerField(null=True, blank=True)
    consumption_tier = models.SmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["href", "signature"], name="uniq_reading_type_sig"),
        ]

    def __str__(self) -> str:
        return reading_type_describe(
            uom=self.uom,
            multiplier=self.power_of_ten_multiplier,
            flow_direction=self.flow_direction,
            interval=self.interval_length,
        )

    @property
    def multiplier(self) -> int:
        return self.power_of_ten_multiplier or 0


class MeterReading(models.Model):
    """A series: one MeterReading of one UsagePoint, with one ReadingType.

    `reading_type` is None while the document that brought the readings lacked it ("units
    unknown"); `reading_type_href` says where to fetch it (the pipeline does, then calls
    `ingest.readings.reading_type_attach`).
    """

    usage_point = models.ForeignKey(UsagePoint, on_delete=models.CASCADE, related_name="series")
    href = models.CharField(max_length=500)
    meter_reading_id = models.CharField(max_length=200)
    reading_type = models.ForeignKey(
        ReadingType, on_delete=models.PROTECT, null=True, blank=True, related_name="series"
    )
    reading_type_href = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["usage_point", "href", "reading_type"],
                condition=Q(reading_type__isnull=False),
                name="uniq_series_known_units",
            ),
            models.UniqueConstraint(
                fields=["usage_point", "href"],
                condition=Q(reading_type__isnull=True),
                name="uniq_series_units_unknown",
            ),
        ]

    def __str__(self) -> str:
        return f"MeterReading {self.meter_reading_id} of {self.usage_point_id}"

    @property
    def units_known(self) -> bool:
        return self.reading_type_id is not None


class IntervalReading(models.Model):
    """One interval of a series, keyed by (series, start, duration): one current value each.

    The composite primary key is the only index on the biggest table, so an import maintains
    one B-tree per reading, not two.
    """

    pk = models.CompositePrimaryKey("meter_reading_id", "start", "duration")
    # No index of its own (the primary key leads with it) and no database constraint: Django
    # makes PostgreSQL foreign keys DEFERRABLE INITIALLY DEFERRED, which queues one check per
    # inserted row until COMMIT (millions for a Bulk feed). The series row is written in the
    # same transaction just before its readings, and deletes cascade through the ORM.
    meter_reading = models.ForeignKey(
        MeterReading,
        on_delete=models.CASCADE,
        related_name="readings",
        db_index=False,
        db_constraint=False,
    )
    start = models.DateTimeField()
    duration = models.IntegerField()  # seconds
    value = models.BigIntegerField()  # raw, in 10^multiplier of the ReadingType's uom
    cost = models.BigIntegerField(null=True, blank=True)  # 10^-5 currency units, as sent
    quality = models.SmallIntegerField(null=True, blank=True)  # first ReadingQuality code
    tou = models.SmallIntegerField(null=True, blank=True)
    cpp = models.SmallIntegerField(null=True, blank=True)
    consumption_tier = models.SmallIntegerField(null=True, blank=True)
    # The Atom `updated` of the snapshot the value came from (None: the document had none).
    # An older snapshot processed later changes nothing (docs/reliability.md test 44).
    source_updated = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["meter_reading_id", "start", "duration"]

    def __str__(self) -> str:
        return f"{self.meter_reading_id}@{self.start.isoformat()}/{self.duration}s"

    def scaled_value(self, multiplier: int | None) -> Decimal:
        """value x 10^multiplier, exactly (no float on the way)."""
        return Decimal(self.value).scaleb(multiplier or 0)

    @property
    def cost_amount(self) -> Decimal | None:
        return None if self.cost is None else Decimal(self.cost).scaleb(COST_SCALE)


class ReadingRevision(models.Model):
    """What a reading was before a later delivery changed its value, quality or cost.

    `stale`: the delivery was an older snapshot (Atom `updated` before the stored value's)
    that arrived late; the reading kept its value (old_*) and new_* records what the stale
    snapshot said. `source_updated` is the delivery's Atom `updated`.
    """

    meter_reading = models.ForeignKey(
        MeterReading, on_delete=models.CASCADE, related_name="revisions"
    )
    start = models.DateTimeField()
    duration = models.IntegerField()
    old_value = models.BigIntegerField()
    old_quality = models.SmallIntegerField(null=True, blank=True)
    old_cost = models.BigIntegerField(null=True, blank=True)
    new_value = models.BigIntegerField()
    new_quality = models.SmallIntegerField(null=True, blank=True)
    new_cost = models.BigIntegerField(null=True, blank=True)
    source_label = models.CharField(max_length=500)
    received_at = models.DateTimeField()
    stale = models.BooleanField(default=False)
    source_updated = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["meter_reading", "start"], name="revision_series_start")]

    def __str__(self) -> str:
        return f"revision of {self.meter_reading_id}@{self.start.isoformat()} ({self.source_label})"


class UsageSummary(models.Model):
    """A billing-period summary (UsageSummary or ElectricPowerUsageSummary).

    Money fields are integers in 10^-5 of `currency`, as PG&E sends them; `status_timestamp`
    is kept as sent (PG&E uses milliseconds there).
    """

    usage_point = models.ForeignKey(UsagePoint, on_delete=models.CASCADE, related_name="summaries")
    href = models.CharField(max_length=500)
    resource = models.CharField(max_length=40)
    billing_start = models.DateTimeField(null=True, blank=True)
    billing_duration = models.IntegerField(null=True, blank=True)
    bill_last_period = models.BigIntegerField(null=True, blank=True)
    bill_to_date = models.BigIntegerField(null=True, blank=True)
    cost_additional_last_period = models.BigIntegerField(null=True, blank=True)
    currency = models.SmallIntegerField(null=True, blank=True)
    commodity = models.SmallIntegerField(null=True, blank=True)
    tariff_profile = models.CharField(max_length=100, blank=True)
    read_cycle = models.CharField(max_length=100, blank=True)
    status_timestamp = models.BigIntegerField(null=True, blank=True)
    overall_consumption_value = models.BigIntegerField(null=True, blank=True)
    overall_consumption_multiplier = models.SmallIntegerField(null=True, blank=True)
    overall_consumption_uom = models.IntegerField(null=True, blank=True)
    line_items = models.JSONField(default=list, blank=True)
    fields = models.JSONField(default=dict, blank=True)
    source_label = models.CharField(max_length=500)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            # PG&E reuses one self href for the two parts of a billing period split by a
            # rate change (2016 sample): the period is part of the identity.
            models.UniqueConstraint(
                fields=["usage_point", "href", "billing_start", "billing_duration"],
                name="uniq_usage_summary",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource} {_last_segment(self.href)}"

    @property
    def overall_consumption(self) -> Decimal | None:
        if self.overall_consumption_value is None:
            return None
        return Decimal(self.overall_consumption_value).scaleb(
            self.overall_consumption_multiplier or 0
        )
