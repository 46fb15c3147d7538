#!/usr/bin/env bash
# Run a command with Redis reachable at REDIS_URL. If nothing answers there and
# redis-server is installed, start a private one for the run and stop it after.
set -euo pipefail
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
PYTHON="${PYTHON:-.venv/bin/python}"

if "$PYTHON" -c 'import os, redis; redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), socket_connect_timeout=1).ping()' 2>/dev/null; then
  exec "$@"
fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "Nothing answers at REDIS_URL=$REDIS_URL and redis-server is not installed." >&2
  echo "Install Redis (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)" >&2
  echo "or set REDIS_URL to a Redis you can reach, e.g. REDIS_URL=redis://redis.example:6379/0 make run" >&2
  exit 1
fi

PORT_FROM_URL=$("$PYTHON" -c 'import os; from urllib.parse import urlsplit; print(urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")).port or 6379)')
mkdir -p var/redis
echo "Starting a private Redis on 127.0.0.1:$PORT_FROM_URL for this run (data in var/redis)."
redis-server --port "$PORT_FROM_URL" --bind 127.0.0.1 --dir var/redis --save "" --appendonly no --daemonize yes --pidfile "$PWD/var/redis/redis.pid" --logfile "$PWD/var/redis/redis.log"
trap 'kill "$(cat var/redis/redis.pid)" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  "$PYTHON" -c 'import os, redis; redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")).ping()' 2>/dev/null && break
  sleep 0.1
done
"$@"
