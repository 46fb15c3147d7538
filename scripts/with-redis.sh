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
  echo "or point REDIS_URL (TEST_REDIS_URL for make test) at a Redis you can reach, e.g. REDIS_URL=redis://redis.example:6379/0 make run" >&2
  exit 1
fi

PORT_FROM_URL=$("$PYTHON" -c 'import os; from urllib.parse import urlsplit; print(urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")).port or 6379)')
# One directory per port: `make run` and `make test` may each start their own at once.
DIR="var/redis-$PORT_FROM_URL"
mkdir -p "$DIR"
echo "Starting a private Redis on 127.0.0.1:$PORT_FROM_URL for this run (data in $DIR)."
redis-server --port "$PORT_FROM_URL" --bind 127.0.0.1 --dir "$DIR" --save "" --appendonly no --daemonize yes --pidfile "$PWD/$DIR/redis.pid" --logfile "$PWD/$DIR/redis.log"
stop_redis() {
  local pid
  pid=$(cat "$DIR/redis.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  # Wait for it to go, so the port is free for the next run.
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}
trap stop_redis EXIT
for _ in $(seq 50); do
  "$PYTHON" -c 'import os, redis; redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")).ping()' 2>/dev/null && break
  sleep 0.1
done
"$@"
