#!/usr/bin/env bash
# LPR Server — install, run and manage. Run `./setup.sh help` for the commands.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
TEST_PACKAGES=(postgresql postgresql-client nginx libnginx-mod-stream chromium chromium-driver fonts-thai-tlwg shellcheck mosquitto redis-server iproute2 systemd curl openssl python3-venv poppler-utils)

# Where `install` puts things. Every path can be moved with an environment
# variable (the test suite installs into a scratch folder this way).
APP_DIR="${LPR_APP_DIR:-$ROOT}"
SERVICE_USER="${LPR_USER:-lprserver}"
ETC_DIR="${LPR_ETC:-/etc/lprserver}"
ENV_FILE="$ETC_DIR/lprserver.env"
DATA_DIR="${LPR_DATA:-/var/lib/lprserver}"
LOG_DIR="${LPR_LOG:-/var/log/lprserver}"
BACKUP_DIR="${LPR_BACKUP_DIR:-/var/backups/lprserver}"
SYSTEMD_DIR="${LPR_SYSTEMD_DIR:-/etc/systemd/system}"
NGINX_DIR="${LPR_NGINX_DIR:-/etc/nginx}"
NGINX_USER="${LPR_NGINX_USER-www-data}"
SERVER_NAME="${LPR_SERVER_NAME:-_}"
TLS_CERT="${LPR_TLS_CERT:-}"
TLS_KEY="${LPR_TLS_KEY:-}"
DB_NAME="${LPR_DB_NAME:-lprserver}"
DB_USER="${LPR_DB_USER:-lprserver}"
PG_HOST="${LPR_PG_HOST:-localhost}"
PG_PORT="${LPR_PG_PORT:-5432}"
PG_ADMIN_URL="${LPR_PG_ADMIN_URL:-}"   # empty: psql as the local postgres user
OS_RELEASE="${LPR_OS_RELEASE:-/etc/os-release}"
UNITS=(lprserver.service lprserver-websocket.service lprserver-websocket@.service lprserver-retention.service
       lprserver-retention.timer)

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "this step needs root: $*"; fi
}

# Install Debian/Ubuntu packages that are not there yet.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "cannot install ${missing[*]}: no apt-get (Debian 12 or Ubuntu 22.04/24.04 needed)"
  say "Installing system packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Create the virtualenv and install the pinned requirements (again only when they change).
ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "Creating the virtualenv in $VENV"
    "$PYTHON" -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; "$PYTHON" -m venv "$VENV"; }
  fi
  local stamp="$VENV/.requirements.sha256" want
  want="$(cat "$ROOT/requirements.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "Installing Python packages (requirements.txt)"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -r "$ROOT/requirements.txt"
    "$VENV/bin/pip" install -q --no-deps -e "$ROOT"
    echo "$want" > "$stamp"
  fi
  # The Thai and English catalogues (SPEC §13), compiled where a .po is newer than its .mo.
  (cd "$ROOT" && "$VENV/bin/python" -c 'from lprserver.i18n import compile_catalogues; compile_catalogues()')
}

flask_cli() { (cd "$ROOT" && FLASK_APP=wsgi exec "$VENV/bin/flask" "$@"); }

# The flask CLI with the installed server's settings when there are some, else development's.
lpr_cli() {
  if [ -f "$ENV_FILE" ]; then
    [ -r "$ENV_FILE" ] || die "cannot read $ENV_FILE: run this as root (sudo ./setup.sh ...)"
    (set -a; # shellcheck source=/dev/null
     . "$ENV_FILE"; set +a; flask_cli lpr "$@")
  else
    flask_cli lpr "$@"
  fi
}

# Development: migrate, create the first admin, start the daemon and the web app.
cmd_run() {
  local simulate=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --simulate) simulate="${2:-3}"; shift ;;
      *) die "run: unknown option $1 (use --simulate N)" ;;
    esac
    shift
  done
  ensure_venv
  # The pages and the simulated cameras' plates are Thai: without a Thai font they show boxes.
  ( apt_install fonts-thai-tlwg ) || say "Warning: could not install fonts-thai-tlwg (needs root or sudo); Thai text may show as boxes"
  cd "$ROOT"
  say "Bringing the database to the current schema"
  flask_cli lpr init-db
  flask_cli lpr create-user admin --role admin --if-missing
  local pids=() port="${INGEST_PORT:-8765}"
  # Ctrl-C, SIGTERM or one of them ending stops all of them, the simulated cameras first (the daemon
  # takes its store workers along).
  trap 'trap - INT TERM EXIT; say "Stopping"; stop_newest_first "${pids[@]}"' INT TERM EXIT
  # The daemon sends live updates to the web app started here, whatever its port.
  export LIVE_RELAY_URL="${LIVE_RELAY_URL:-http://127.0.0.1:${WEB_PORT:-5000}/internal/live}"
  say "Starting the ingest daemon on port $port"
  "$VENV/bin/python" websocket_server.py & pids+=($!)
  say "Starting the web app on http://127.0.0.1:${WEB_PORT:-5000}"
  "$VENV/bin/python" run.py & pids+=($!)
  if [ -n "$simulate" ]; then
    wait_for_port "$port" "${pids[0]}" || die "the ingest daemon did not start listening on port $port"
    say "Simulating $simulate cameras"
    # One subshell that becomes flask (exec), so that $! is the simulator's own pid.
    (FLASK_APP=wsgi exec "$VENV/bin/flask" lpr simulate --cameras "$simulate" --rate 0.5 \
       --url "http://127.0.0.1:$port") & pids+=($!)
  fi
  say "Running. Press Ctrl-C to stop."
  # When one of them ends by itself (a daemon that cannot bind its port, say), stop the others here:
  # the EXIT trap would run after this function, where its local pids are gone.
  local status=0
  wait -n "${pids[@]}" || status=$?
  trap - INT TERM EXIT
  say "A process ended (exit $status); stopping the others"
  stop_newest_first "${pids[@]}"
  return "$status"
}

# Stop these processes, the last one first, each before the next.
stop_newest_first() {
  local i
  for ((i = $#; i > 0; i--)); do
    if kill "${!i}" 2>/dev/null; then
      wait "${!i}" 2>/dev/null || true  # a stopped process exits non-zero
    fi
  done
  return 0
}

# Wait (up to a minute) until something listens on 127.0.0.1:$1, while process $2 is still running.
wait_for_port() {
  local tries=0
  until "$VENV/bin/python" -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$1" 2>/dev/null; do
    kill -0 "$2" 2>/dev/null || return 1
    tries=$((tries + 1))
    [ "$tries" -lt 120 ] || return 1
    sleep 0.5
  done
}

# Everything the test suite needs, then the suite on SQLite and on PostgreSQL.
cmd_test() {
  apt_install "${TEST_PACKAGES[@]}"
  ensure_venv
  cd "$ROOT"
  say "Lint (ruff)"
  "$VENV/bin/ruff" check .
  # The two suites side by side: most of their time is spent waiting on servers, sockets and
  # Chromium, so together they take little longer than the longer one. LPR_TEST_SERIAL=1 runs
  # them one after the other with their output as it comes.
  local logs="" sqlite_rc=0 pg_rc=0 sqlite_pid pg_pid
  if [ "${LPR_TEST_SERIAL:-0}" = "1" ]; then
    say "Test suite on SQLite"
    "$VENV/bin/python" -m pytest --db sqlite "$@" || sqlite_rc=$?
    say "Test suite on PostgreSQL (a throwaway server the suite starts)"
    "$VENV/bin/python" -m pytest --db postgresql "$@" || pg_rc=$?
  else
    logs="$(mktemp -d "${TMPDIR:-/tmp}/lpr-test-logs.XXXXXX")"
    say "Test suites on SQLite and on PostgreSQL (a throwaway server), side by side; logs in $logs"
    "$VENV/bin/python" -m pytest --db sqlite "$@" > "$logs/sqlite.log" 2>&1 &
    sqlite_pid=$!
    "$VENV/bin/python" -m pytest --db postgresql "$@" > "$logs/postgresql.log" 2>&1 &
    pg_pid=$!
    wait "$sqlite_pid" || sqlite_rc=$?
    say "Test suite on SQLite (exit $sqlite_rc)"
    cat "$logs/sqlite.log"
    wait "$pg_pid" || pg_rc=$?
    say "Test suite on PostgreSQL (exit $pg_rc)"
    cat "$logs/postgresql.log"
  fi
  # pytest's 5 is "no tests collected": a selection of tests that never reach a database has
  # nothing to run on PostgreSQL.
  if [ "$pg_rc" -eq 5 ]; then pg_rc=0; fi
  if [ "$sqlite_rc" -ne 0 ] || [ "$pg_rc" -ne 0 ]; then
    die "tests failed (SQLite exit $sqlite_rc, PostgreSQL exit $pg_rc)"
  fi
  [ -z "$logs" ] || rm -rf "$logs"
}

# ---------------------------------------------------------------- server administration

systemd_running() { [ -d /run/systemd/system ]; }

skip_without_systemd() {
  systemd_running && return 1
  say "Skipping: $* (systemd is not running as PID 1 here; do it when it is)"
  return 0
}

require_root() { [ "$(id -u)" -eq 0 ] || die "$1 needs root: sudo ./setup.sh $1"; }

# Refuse anything but the systems this is tested on.
check_os() {
  [ -r "$OS_RELEASE" ] || die "cannot read $OS_RELEASE: Debian 12 or Ubuntu 22.04/24.04 needed"
  local id version
  id="$(sed -n 's/^ID=//p' "$OS_RELEASE" | tr -d '"' | head -n1)"
  version="$(sed -n 's/^VERSION_ID=//p' "$OS_RELEASE" | tr -d '"' | head -n1)"
  case "$id:$version" in
    debian:12|ubuntu:22.04|ubuntu:24.04) say "System: $id $version (supported)" ;;
    *) die "unsupported system: ${id:-unknown} ${version:-?}. install supports Debian 12 and Ubuntu 22.04/24.04 only" ;;
  esac
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# Write $2 (a rendered file) to $1 if it differs; say which. Returns 0 when it changed.
put_file() {
  local target="$1" content="$2" mode="${3:-0644}"
  if [ -f "$target" ] && [ "$(cat "$target")" = "$content" ]; then
    echo "    unchanged: $target"
    return 1
  fi
  install -d "$(dirname "$target")"
  printf '%s\n' "$content" > "$target.tmp"
  chmod "$mode" "$target.tmp"
  mv "$target.tmp" "$target"
  echo "    written:   $target"
  return 0
}

service_group() { id -gn "$SERVICE_USER"; }

ensure_user() {
  if id -u "$SERVICE_USER" >/dev/null 2>&1; then
    echo "    user $SERVICE_USER exists"
  else
    say "Creating the system user $SERVICE_USER"
    useradd --system --home-dir "$DATA_DIR" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
  fi
  # nginx reads the socket and the images through the service's group.
  if [ -n "$NGINX_USER" ] && id -u "$NGINX_USER" >/dev/null 2>&1 \
     && ! id -nG "$NGINX_USER" | tr ' ' '\n' | grep -qx "$(service_group)"; then
    say "Adding $NGINX_USER to the group $(service_group) (socket and images)"
    usermod -aG "$(service_group)" "$NGINX_USER"
  fi
}

ensure_dirs() {
  local group
  group="$(service_group)"
  install -d -o root -g "$group" -m 0750 "$ETC_DIR"
  install -d -o "$SERVICE_USER" -g "$group" -m 0750 "$DATA_DIR" "$DATA_DIR/images" "$LOG_DIR"
  install -d -o root -g root -m 0700 "$BACKUP_DIR"
  echo "    $ETC_DIR (settings), $DATA_DIR/images (images), $LOG_DIR, $BACKUP_DIR (backups)"
}

# psql as the PostgreSQL superuser: the local postgres user, or LPR_PG_ADMIN_URL.
pg_admin() {
  if [ -n "$PG_ADMIN_URL" ]; then
    psql "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 -qtAX "$@"
  else
    (cd / && runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtAX "$@")
  fi
}

env_value() { [ -f "$ENV_FILE" ] || return 0; sed -n "s/^$1=//p" "$ENV_FILE" | tail -n1; }

# The role and database, with a generated password kept in the settings file.
ensure_database() {
  if [ -z "$PG_ADMIN_URL" ] && systemd_running; then
    systemctl enable --now postgresql >/dev/null
  fi
  local url password
  url="$(env_value DATABASE_URL)"
  if [ -n "$url" ]; then
    echo "    DATABASE_URL is set in $ENV_FILE; database left as it is"
    return 0
  fi
  password="$(random_hex 24)"
  if [ "$(pg_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" = "1" ]; then
    say "Giving the existing PostgreSQL role $DB_USER a new password (the settings file had none)"
    pg_admin -v pw="$password" <<<"ALTER ROLE \"$DB_USER\" LOGIN PASSWORD :'pw';"
  else
    say "Creating the PostgreSQL role $DB_USER"
    pg_admin -v pw="$password" <<<"CREATE ROLE \"$DB_USER\" LOGIN PASSWORD :'pw';"
  fi
  if [ "$(pg_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != "1" ]; then
    say "Creating the PostgreSQL database $DB_NAME"
    # C.UTF-8 character classes make pg_trgm index Thai letters (a "C" ctype drops them, and Thai
    # "contains" searches then scan the table); C.UTF-8 exists on every Debian/Ubuntu glibc.
    pg_admin -c "CREATE DATABASE \"$DB_NAME\" OWNER \"$DB_USER\" ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' TEMPLATE template0"
  fi
  DATABASE_URL="postgresql://$DB_USER:$password@$PG_HOST:$PG_PORT/$DB_NAME"
}

tls_on() { [ -n "$TLS_CERT" ] && [ -n "$TLS_KEY" ]; }

# The settings file: written once, then only missing settings are added (never overwritten).
ensure_env_file() {
  local secure=off
  tls_on && secure=on
  local wanted=(
    "FLASK_CONFIG=production"
    "SECRET_KEY=$(random_hex 32)"
    "DATABASE_URL=${DATABASE_URL:-}"
    "IMAGE_STORAGE_PATH=$DATA_DIR/images"
    "HEARTBEAT_FILE=$DATA_DIR/ingest.heartbeat"
    "IMAGE_ACCEL_REDIRECT=/_images/"
    "INGEST_AUTH=token"
    "INGEST_HOST=0.0.0.0"
    "INGEST_PORT=8765"
    "RETENTION_DAYS=90"
    "IMAGE_DISK_BUDGET_GB=0"
    "SESSION_COOKIE_SECURE=$secure"
    "LOG_LEVEL=INFO"
    "TIMEZONE=Asia/Bangkok"
    "METRICS_TOKEN="
    # The daemon posts live events to the web app on its gunicorn unix socket.
    "LIVE_RELAY_URL=http+unix://%2Frun%2Flprserver%2Fweb.sock/internal/live"
    # nginx stands in front: client addresses (rate limits, audit) come from X-Forwarded-For.
    "TRUSTED_PROXIES=1"
    # More than one web worker needs a message queue for live events (README "Several web workers or hosts").
    "WEB_WORKERS=1"
    "LIVE_MESSAGE_QUEUE="
  )
  local added=0 line
  if [ ! -f "$ENV_FILE" ]; then
    printf '# LPR Server settings (README.md lists them all). Secrets: keep this file 0640 root:%s.\n' \
      "$(service_group)" > "$ENV_FILE"
  fi
  for line in "${wanted[@]}"; do
    grep -q "^${line%%=*}=" "$ENV_FILE" && continue
    [ "$line" = "DATABASE_URL=" ] && die "no DATABASE_URL to write (database step failed)"
    printf '%s\n' "$line" >> "$ENV_FILE"
    added=$((added + 1))
  done
  chown "root:$(service_group)" "$ENV_FILE"
  chmod 0640 "$ENV_FILE"
  if [ "$added" -gt 0 ]; then echo "    $ENV_FILE: $added setting(s) added"; else echo "    unchanged: $ENV_FILE"; fi
}

# Shipped files with this machine's paths.
render() {
  sed -e "s|/opt/lprserver/.venv|$VENV|g" \
      -e "s|/opt/lprserver|$APP_DIR|g" \
      -e "s|/etc/lprserver/lprserver.env|$ENV_FILE|g" \
      -e "s|/var/lib/lprserver|$DATA_DIR|g" \
      -e "s|/var/log/lprserver|$LOG_DIR|g" \
      -e "s|^User=lprserver|User=$SERVICE_USER|" \
      -e "s|^Group=lprserver|Group=$(service_group)|" \
      -e "s|/etc/nginx/snippets/|$NGINX_DIR/snippets/|g" \
      -e "s|server_name _;|server_name $SERVER_NAME;|g" \
      "$1"
}

# With a certificate: uncomment the TLS server and send port 80 there.
render_site() {
  local site
  site="$(render "$ROOT/nginx/lprserver.conf")"
  if tls_on; then
    # shellcheck disable=SC2016  # $host and $request_uri are nginx's variables
    site="$(printf '%s\n' "$site" | sed -e '/^# server {/,/^# }/s/^# \{0,1\}//' \
      -e "s|/etc/ssl/lprserver/fullchain.pem|$TLS_CERT|" -e "s|/etc/ssl/lprserver/privkey.pem|$TLS_KEY|" \
      -e '0,/    include .*lprserver-locations.conf;/s||    location / { return 301 https://$host$request_uri; }\n    location /.well-known/acme-challenge/ { root /var/www/html; }|')"
  fi
  printf '%s\n' "$site"
}

# The ingest daemon's units: the lprserver-websocket@N.service instances an admin enabled (several daemons
# on one port, README "Several ingest daemons"), else the one lprserver-websocket.service.
ingest_units() {
  local wants=("$SYSTEMD_DIR"/multi-user.target.wants/lprserver-websocket@*.service)
  if [ -e "${wants[0]}" ]; then
    basename -a "${wants[@]}"
  else
    echo lprserver-websocket.service
  fi
}

UNITS_CHANGED=0
install_units() {
  local unit
  for unit in "${UNITS[@]}"; do
    if put_file "$SYSTEMD_DIR/$unit" "$(render "$ROOT/systemd/$unit")"; then UNITS_CHANGED=1; fi
  done
  skip_without_systemd "systemctl daemon-reload and enable" && return 0
  [ "$UNITS_CHANGED" -eq 1 ] && systemctl daemon-reload
  # shellcheck disable=SC2046  # one unit name per line
  systemctl enable lprserver.service $(ingest_units) lprserver-retention.timer >/dev/null 2>&1
}

NGINX_CHANGED=0
install_nginx() {
  put_file "$NGINX_DIR/snippets/lprserver-locations.conf" "$(render "$ROOT/nginx/lprserver-locations.conf")" \
    && NGINX_CHANGED=1
  put_file "$NGINX_DIR/sites-available/lprserver.conf" "$(render_site)" && NGINX_CHANGED=1
  install -d "$NGINX_DIR/sites-enabled"
  if [ "$(readlink "$NGINX_DIR/sites-enabled/lprserver.conf" 2>/dev/null)" != "$NGINX_DIR/sites-available/lprserver.conf" ]; then
    ln -sfn "$NGINX_DIR/sites-available/lprserver.conf" "$NGINX_DIR/sites-enabled/lprserver.conf"
    echo "    enabled:   $NGINX_DIR/sites-enabled/lprserver.conf"
    NGINX_CHANGED=1
  fi
  if [ -L "$NGINX_DIR/sites-enabled/default" ]; then
    rm "$NGINX_DIR/sites-enabled/default"
    echo "    disabled the distribution's default site (it also answers on port 80)"
    NGINX_CHANGED=1
  fi
  skip_without_systemd "nginx -t and reload" && return 0
  nginx -t -q || die "nginx refuses the configuration (see above); the site is in $NGINX_DIR/sites-available"
  systemctl enable --now nginx >/dev/null 2>&1
  [ "$NGINX_CHANGED" -eq 1 ] && systemctl reload nginx
  return 0
}

start_services() {
  skip_without_systemd "starting lprserver, lprserver-websocket and the retention timer" && return 0
  if [ "$UNITS_CHANGED" -eq 1 ] || [ "${1:-}" = restart ]; then
    # shellcheck disable=SC2046
    systemctl restart lprserver.service $(ingest_units)
  else
    # shellcheck disable=SC2046
    systemctl start lprserver.service $(ingest_units)
  fi
  systemctl start lprserver-retention.timer
}

migrate_and_admin() {
  say "Bringing the database to the current schema"
  lpr_cli init-db
  say "First admin (its password is printed only when it is created)"
  lpr_cli create-user admin --role admin --if-missing
}

cmd_install() {
  require_root install
  check_os
  case "$APP_DIR" in
    /home/*|/root/*) die "the app is in $APP_DIR, which the services cannot read (ProtectHome): clone it to /opt/lprserver" ;;
  esac
  [ "$APP_DIR" = "$ROOT" ] || die "run the setup.sh inside $APP_DIR (this one is in $ROOT)"
  local packages=(python3 python3-venv nginx postgresql-client curl)
  [ -z "$PG_ADMIN_URL" ] && packages+=(postgresql)
  say "1/8 System packages: ${packages[*]}"
  apt_install "${packages[@]}"
  say "2/8 System user and folders"
  ensure_user
  ensure_dirs
  say "3/8 Python virtualenv in $VENV"
  ensure_venv
  say "4/8 PostgreSQL database $DB_NAME and role $DB_USER"
  ensure_database
  say "5/8 Settings in $ENV_FILE (readable by root and $(service_group) only)"
  ensure_env_file
  say "6/8 Database schema and first admin"
  migrate_and_admin
  say "7/8 systemd units in $SYSTEMD_DIR"
  install_units
  say "8/8 nginx site in $NGINX_DIR"
  install_nginx
  start_services
  say "Done. Web: http://$( [ "$SERVER_NAME" = _ ] && hostname -f 2>/dev/null || echo "$SERVER_NAME")/ · cameras: port 8765 (or wss://…/ingest/ through nginx)"
  say "Add cameras with: sudo ./setup.sh add-camera CAM001 --name 'Front gate'"
}

cmd_upgrade() {
  require_root upgrade
  check_os
  if [ -e "$APP_DIR/.git" ]; then
    say "Pulling the new version"
    git -C "$APP_DIR" pull --ff-only
  else
    say "No git checkout in $APP_DIR: using the files as they are"
  fi
  ensure_venv
  migrate_and_admin
  # Migration 0008 adds the analytics' counts empty: fill them from the records once (README "Analytics").
  lpr_cli rebuild-analytics --if-empty
  install_units
  install_nginx
  start_services restart
  say "Upgraded."
}

cmd_status() {
  if systemd_running; then
    # shellcheck disable=SC2046
    systemctl --no-pager status lprserver.service $(ingest_units) lprserver-retention.timer || true
  else
    say "systemd is not running here: no service state to show"
  fi
  say "Health of the web app (/health)"
  curl -fsS --unix-socket /run/lprserver/web.sock http://localhost/health 2>/dev/null && echo \
    || echo "    the web app does not answer on /run/lprserver/web.sock"
  say "Ingest daemon (port 8765)"
  curl -fsS "http://127.0.0.1:${INGEST_PORT:-8765}/health" 2>/dev/null && echo \
    || echo "    the daemon does not answer on 127.0.0.1:${INGEST_PORT:-8765}"
}

cmd_logs() {
  local units=()
  case "${1:-}" in
    web) units=(-u lprserver.service) ;;
    ingest) units=(-u 'lprserver-websocket*') ;;
    retention) units=(-u lprserver-retention.service) ;;
    "") units=(-u lprserver.service -u 'lprserver-websocket*') ;;
    *) die "logs: use web, ingest or retention" ;;
  esac
  if ! command -v journalctl >/dev/null || ! systemd_running; then
    die "logs: no journal here (systemd is not running)"
  fi
  journalctl "${units[@]}" -n 200 -f
}

# Database dump, images tarball and settings, into one folder.
cmd_backup() {
  require_root backup
  [ -r "$ENV_FILE" ] || die "backup: no settings in $ENV_FILE (is the server installed?)"
  local target="${1:-$BACKUP_DIR/$(date -u +%Y%m%d-%H%M%S)}" url images
  url="$(env_value DATABASE_URL)"
  images="$(env_value IMAGE_STORAGE_PATH)"
  install -d -m 0700 "$target"
  say "Backing up into $target"
  case "$url" in
    postgres*) pg_dump --format=custom --no-owner --file "$target/database.dump" "$url" ;;
    sqlite:///*) "$VENV/bin/python" - "${url#sqlite:///}" "$target/database.sqlite" <<'PY'
import sqlite3, sys
src, dst = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
src.backup(dst)
PY
    ;;
    *) die "backup: cannot dump DATABASE_URL of this kind" ;;
  esac
  if [ "$(env_value IMAGE_STORE)" = s3 ]; then
    # SPEC §14: the images are objects in a bucket; the store's own tools back it up (README).
    printf 'IMAGE_STORE=s3\nS3_BUCKET=%s\nS3_ENDPOINT_URL=%s\n' "$(env_value S3_BUCKET)" \
      "$(env_value S3_ENDPOINT_URL)" >"$target/images-in-bucket.txt"
    say "Images are not in this backup: they are in the bucket $(env_value S3_BUCKET); back it up with the store's own tools (versioning, replication, mc mirror, aws s3 sync)"
  else
    tar -C "$images" -czf "$target/images.tar.gz" .
  fi
  install -m 0600 "$ENV_FILE" "$target/lprserver.env"
  say "Backup done: $target (database, images, lprserver.env — keep it private)"
}

cmd_restore() {
  require_root restore
  local source="${1:-}" url images
  if [ -z "$source" ] || [ ! -d "$source" ]; then
    die "usage: restore DIR --yes (a folder made by backup)"
  fi
  [ "${2:-}" = --yes ] || die "restore replaces the database and the images with $source: add --yes"
  url="$(env_value DATABASE_URL)"
  images="$(env_value IMAGE_STORAGE_PATH)"
  systemd_running && systemctl stop lprserver.service 'lprserver-websocket*.service'
  say "Restoring the database"
  case "$url" in
    postgres*)
      # pg_restore --clean alone cannot drop a partition's inherited primary key (lpr_records is
      # partitioned by month, SPEC §14): lpr_records goes first, with its partitions, and the restore
      # runs in the same transaction. It commits only when pg_restore read the whole dump: otherwise
      # psql ends with the transaction open, which rolls it back, and the database is as it was.
      { printf 'BEGIN;\nDROP TABLE IF EXISTS lpr_records CASCADE;\n'
        pg_restore --clean --if-exists --no-owner -f - "$source/database.dump" && printf 'COMMIT;\n'
      } | psql -X -q -v ON_ERROR_STOP=1 -d "$url" >/dev/null ;;
    sqlite:///*) install -m 0640 "$source/database.sqlite" "${url#sqlite:///}" ;;
    *) die "restore: cannot restore DATABASE_URL of this kind" ;;
  esac
  if [ "$(env_value IMAGE_STORE)" = s3 ]; then
    say "Images are in the bucket $(env_value S3_BUCKET): left as they are (restore them with the store's own tools)"
    if [ -f "$source/images.tar.gz" ]; then
      say "This backup has images.tar.gz: unpack it and copy its folders into the bucket as they are (aws s3 sync DIR s3://$(env_value S3_BUCKET)/)"
    fi
  elif [ -f "$source/images.tar.gz" ]; then
    say "Restoring the images into $images"
    local incoming="$images.restore"
    rm -rf "$incoming"
    install -d -o "$SERVICE_USER" -g "$(service_group)" -m 0750 "$incoming"
    tar -C "$incoming" -xzf "$source/images.tar.gz"
    chown -R "$SERVICE_USER:$(service_group)" "$incoming"
    rm -rf "$images.old"
    mv "$images" "$images.old" && mv "$incoming" "$images" && rm -rf "$images.old"
  else
    say "No images.tar.gz in $source (its images were in a bucket, images-in-bucket.txt): the image folder is left as it is"
  fi
  lpr_cli init-db
  start_services restart
  say "Restored from $source"
}

cmd_help() {
  cat <<'USAGE'
Usage: ./setup.sh COMMAND

Development
  run [--simulate N]   install what is needed, then start the ingest daemon (port 8765) and
                       the web app (http://127.0.0.1:5000) on SQLite; prints the first
                       admin's password once; --simulate N also runs N simulated cameras
  test [PYTEST ARGS]   install everything the tests need (PostgreSQL, Chromium, nginx, fonts),
                       then run the whole suite on SQLite and on PostgreSQL

Server (Debian 12, Ubuntu 22.04 or 24.04; as root)
  install              system user, venv, PostgreSQL database and role, settings in
                       /etc/lprserver/lprserver.env, migrations, first admin, systemd units,
                       nginx site, start. Safe to run again: it changes only what is missing.
  upgrade              git pull, dependencies, migrations, units, restart
  status               state of the services and of /health
  logs [web|ingest|retention]
                       follow a service's journal (both services without an argument)
  create-user NAME [--role admin|operator|viewer] [--password P] [--sites A,B]
  reset-admin [NAME]   give the admin (default: admin) a new password, printed once
  delete-user NAME
  add-camera ID [--name N] [--location L]
                       create a camera and print its token once
  rebuild-analytics    count the analytics again from the records (after changing TIMEZONE)
  backup [DIR]         database dump + images tarball + settings into DIR
                       (default /var/backups/lprserver/<date>)
  restore DIR --yes    put a backup back (stops and starts the services)
USAGE
}

main() {
  local command="${1:-help}"
  [ $# -gt 0 ] && shift
  case "$command" in
    run) cmd_run "$@" ;;
    test) cmd_test "$@" ;;
    install) cmd_install "$@" ;;
    upgrade) cmd_upgrade "$@" ;;
    status) cmd_status "$@" ;;
    logs) cmd_logs "$@" ;;
    create-user) [ $# -ge 1 ] || die "usage: create-user NAME [--role ROLE] [--password P] [--sites A,B]"; lpr_cli create-user "$@" ;;
    reset-admin) lpr_cli create-user "${1:-admin}" --role admin ;;
    delete-user) [ $# -eq 1 ] || die "usage: delete-user NAME"; lpr_cli delete-user "$1" ;;
    add-camera) [ $# -ge 1 ] || die "usage: add-camera ID [--name N] [--location L]"; lpr_cli add-camera "$@" ;;
    rebuild-analytics) lpr_cli rebuild-analytics ;;
    backup) cmd_backup "$@" ;;
    restore) cmd_restore "$@" ;;
    help|-h|--help) cmd_help ;;
    *) cmd_help >&2; die "unknown command: $command" ;;
  esac
}

main "$@"
