"""PG&E's call budget on the Django side: pacing (`pacing`), shared counters (`counters`) and
the gate every `PgeClient` built by `gascap.pge_settings` sends through (`budget`)."""
