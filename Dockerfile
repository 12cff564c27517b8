# One image for web, worker and beat (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=gascap.settings.production \
    GASCAP_VAR_DIR=/var/lib/gascap

RUN useradd --system --create-home --home-dir /home/gascap gascap \
    && mkdir -p /var/lib/gascap && chown gascap /var/lib/gascap

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# collectstatic needs settings but no real secrets: placeholders for this build step only.
RUN DJANGO_SECRET_KEY=build DJANGO_ALLOWED_HOSTS=build DATABASE_URL=sqlite:////tmp/build.db \
    REDIS_URL=redis://build:6379/0 GASCAP_FIELD_ENCRYPTION_KEYS=build GASCAP_NOTIFY_TOKEN=build \
    python manage.py collectstatic --noinput

USER gascap
EXPOSE 8000
CMD ["gunicorn", "gascap.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "30"]
