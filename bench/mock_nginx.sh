#!/usr/bin/env bash
# Run the nginx mock upstream (bench/mock_nginx.conf) in the foreground on 127.0.0.1.
#   bench/mock_nginx.sh [PORT] [DIR]
# PORT defaults to 18080; DIR (pid, logs, temp files, the filled-in config) to a new temp dir.
# Stop it with Ctrl-C (or SIGTERM/SIGQUIT to its pid).
set -euo pipefail
PORT="${1:-18080}"
DIR="${2:-$(mktemp -d /tmp/keygate-bench-nginx.XXXXXX)}"
HERE="$(cd "$(dirname "$0")" && pwd)"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
mkdir -p "$DIR"
sed -e "s|@PORT@|${PORT}|g" -e "s|@DIR@|${DIR}|g" "$HERE/mock_nginx.conf" > "$DIR/nginx.conf"
echo "mock upstream: http://127.0.0.1:${PORT}/v1  (dir ${DIR})" >&2
# -e: nginx opens its compiled-in error log before reading the config; point it at DIR too.
exec "$NGINX" -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/error.log"
