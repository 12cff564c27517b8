"""Notifications, fetches, ESPI reading storage, Celery tasks and schedules."""
