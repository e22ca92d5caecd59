#!/bin/sh
# The container's command (Dockerfile): web, daemon, migrate, or any other command.
set -eu
case "${1:-web}" in
  web)
    shift || true
    # As systemd/lprserver.service, on a TCP port instead of a unix socket (nginx is another container).
    # More than one worker (WEB_WORKERS) needs LIVE_MESSAGE_QUEUE: the redis profile.
    exec gunicorn --worker-class gevent --workers "${WEB_WORKERS:-1}" --bind 0.0.0.0:5000 --timeout 60 \
      --graceful-timeout 20 \
      --forwarded-allow-ips='*' --no-control-socket --error-logfile - "$@" wsgi:app ;;
  daemon)
    exec python websocket_server.py ;;
  migrate)
    exec flask lpr init-db ;;
  *)
    exec "$@" ;;
esac
