# The production image: one image for web (ASGI), worker and beat.
FROM python:3.11-slim

# FORWARDED_ALLOW_IPS: whose X-Forwarded-* headers uvicorn believes (it reads the variable
# itself); set it to your reverse proxy's address, never `*`.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    LIFECYCLE_VAR_DIR=/var/lib/lifecycle STATIC_ROOT=/app/staticfiles \
    FORWARDED_ALLOW_IPS=127.0.0.1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# collectstatic needs settings to load; these throwaway values are for the build only.
RUN DEBUG=0 SECRET_KEY=build-only-not-secret-0123456789abcdefghijklmnop \
    LIFECYCLE_ENCRYPTION_KEYS=ZmFrZS1idWlsZC1vbmx5LWtleS0wMTIzNDU2Nzg5YWI= \
    LIFECYCLE_HASH_KEY=build-only python manage.py collectstatic --noinput \
 && useradd --system --home /app lifecycle && mkdir -p /var/lib/lifecycle \
 && chown -R lifecycle /var/lib/lifecycle
USER lifecycle
EXPOSE 8000
CMD ["uvicorn", "lifecycle.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--proxy-headers", "--ws-max-size", "1048576", "--ws-per-message-deflate", "false", \
     "--workers", "2"]
