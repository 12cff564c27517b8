"""Stored totals of a series per local day and per local month (America/Los_Angeles): what
the app API's daily and monthly totals read instead of summing a year of readings.

`ingest.rollups` keeps them equal to a recomputation from the readings, in the same
transaction as the readings they sum. Sums are of the raw integers (10^multiplier of the
series' unit; cost in 10^-5 currency units), so they stay exact.
"""

from __future__ import annotations

from django.db import models

from ingest.models.readings import MeterReading

__all__ = ["DailyRollup", "MonthlyRollup"]


class _Rollup(models.Model):
    value_sum = models.BigIntegerField()
    readings = models.IntegerField()
    covered_seconds = models.BigIntegerField()  # sum of the readings' durations
    cost_sum = models.BigIntegerField(null=True, blank=True)  # None: no reading had a cost

    class Meta:
        abstract = True


class DailyRollup(_Rollup):
    """A series' readings whose start falls on one local day."""

    series = models.ForeignKey(MeterReading, on_delete=models.CASCADE, related_name="daily_rollups")
    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "day"], name="uniq_daily_rollup"),
        ]

    def __str__(self) -> str:
        return f"{self.series_id} {self.day}"


class MonthlyRollup(_Rollup):
    """A series' readings whose start falls in one local month (`month` is its first day)."""

    series = models.ForeignKey(
        MeterReading, on_delete=models.CASCADE, related_name="monthly_rollups"
    )
    month = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "month"], name="uniq_monthly_rollup"),
        ]

    def __str__(self) -> str:
        return f"{self.series_id} {self.month:%Y-%m}"
