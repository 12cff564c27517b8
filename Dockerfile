# One image for web, worker, beat and migrate (docker-compose.yml).
#
# The build context is an allow-list (.dockerignore): .env, secrets/, var/, .git and .venv
# never reach the builder, so no layer can hold a secret. Secrets arrive at run time only:
# the environment from .env (compose's env_file) and the PG&E key mounted read-only.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=gascap.settings.production

RUN useradd --system --create-home --home-dir /home/gascap gascap

WORKDIR /app
# Exact versions with their hashes (requirements.lock, `make lock`): pip resolves nothing and
# refuses any file whose hash differs.
COPY requirements.lock .
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock

COPY . .
# collectstatic needs settings but no real secrets: placeholders for this build step only (not
# ENV, so no later layer or container sees them). Static files land in /app/var/static.
# var/ is GASCAP_VAR_DIR's default (also when .env leaves it empty): the app user writes there
# (beat's heartbeat, the metrics files of docker-compose.yml's shared `metrics` volume); the
# code stays root-owned and read-only to it.
RUN DJANGO_SECRET_KEY=build DJANGO_ALLOWED_HOSTS=build DATABASE_URL=sqlite:////tmp/build.db \
    REDIS_URL=redis://build:6379/0 GASCAP_FIELD_ENCRYPTION_KEYS=build GASCAP_NOTIFY_TOKEN=build \
    python manage.py collectstatic --noinput \
    && rm -f /tmp/build.db \
    && mkdir -p /app/var/metrics && chown gascap:gascap /app/var /app/var/metrics

USER gascap
# docker-compose.yml runs gunicorn on the proxy's network only; this default is for `docker run`.
CMD ["gunicorn", "gascap.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "30"]
