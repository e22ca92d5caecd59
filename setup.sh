#!/usr/bin/env bash
# LPR Server — install, run and manage. Run `./setup.sh help` for the commands.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
TEST_PACKAGES=(postgresql nginx chromium chromium-driver fonts-thai-tlwg shellcheck systemd)

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
}

flask_cli() { (cd "$ROOT" && FLASK_APP=wsgi "$VENV/bin/flask" "$@"); }

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
  cd "$ROOT"
  say "Bringing the database to the current schema"
  flask_cli lpr init-db
  flask_cli lpr create-user admin --role admin --if-missing
  local pids=()
  trap 'say "Stopping"; kill "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
  say "Starting the ingest daemon on port ${INGEST_PORT:-8765}"
  "$VENV/bin/python" websocket_server.py & pids+=($!)
  say "Starting the web app on http://127.0.0.1:${WEB_PORT:-5000}"
  "$VENV/bin/python" run.py & pids+=($!)
  if [ -n "$simulate" ]; then
    sleep 3
    say "Simulating $simulate cameras"
    flask_cli lpr simulate --cameras "$simulate" --rate 0.5 --url "http://127.0.0.1:${INGEST_PORT:-8765}" & pids+=($!)
  fi
  say "Running. Press Ctrl-C to stop."
  wait -n "${pids[@]}"
}

# Everything the test suite needs, then the suite on SQLite and on PostgreSQL.
cmd_test() {
  apt_install "${TEST_PACKAGES[@]}"
  ensure_venv
  cd "$ROOT"
  say "Lint (ruff)"
  "$VENV/bin/ruff" check .
  say "Test suite on SQLite"
  "$VENV/bin/python" -m pytest --db sqlite "$@"
  say "Test suite on PostgreSQL (a throwaway server the suite starts)"
  "$VENV/bin/python" -m pytest --db postgresql "$@"
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
USAGE
}

main() {
  local command="${1:-help}"
  [ $# -gt 0 ] && shift
  case "$command" in
    run) cmd_run "$@" ;;
    test) cmd_test "$@" ;;
    help|-h|--help) cmd_help ;;
    *) cmd_help >&2; die "unknown command: $command" ;;
  esac
}

main "$@"
