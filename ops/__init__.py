"""Operators' observability: structured log context, Sentry scrubbing, Prometheus metrics,
alerts and the admin dashboard's figures. Other packages touch it only through one-line hooks
(`ops.log_context.log_context_set`, `ops.metrics.*_record`)."""
