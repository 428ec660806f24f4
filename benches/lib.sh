# Shared helpers for the whole-process benchmarks in benches/*.sh; sourced,
# not run. Sets BENCH_ROOT (the repository), WORK (a scratch folder, kept
# when KEEP=1), TIDINGS (the release binary) and GEN (the library generator),
# and stops every process it started on exit.

set -euo pipefail

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GEN="$BENCH_ROOT/tests/fixtures/bench/gen_library.py"
# The stdlib-only helpers run on any python3; Debian's is the known one.
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}
WORK=${WORK:-$(mktemp -d /tmp/tidings-bench.XXXXXX)}
mkdir -p "$WORK"
# nginx workers run as nobody: they must be able to read what is served.
chmod 755 "$WORK"
STARTED_PIDS=()

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

need() {
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null || { echo "missing: $cmd (see the header of $0)" >&2; exit 1; }
  done
}

cleanup() {
  # Only what this script started, by pid.
  for pid in "${STARTED_PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  if [ -f "$WORK/nginx.pid" ]; then kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT

# Build the release binary unless TIDINGS points at one already.
build_tidings() {
  if [ -z "${TIDINGS:-}" ]; then
    log "cargo build --release"
    (cd "$BENCH_ROOT" && cargo build --release --quiet)
    TIDINGS="$BENCH_ROOT/target/release/tidings"
  fi
  [ -x "$TIDINGS" ] || { echo "no tidings binary at $TIDINGS" >&2; exit 1; }
}

# Wait until a TCP port on 127.0.0.1 accepts connections (at most 10 s).
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  exit 1
}

# start_nginx PORT ROOT: nginx serving ROOT as fast as it reasonably can
# (sendfile, open file cache, no access log, keep-alive without a request
# cap, one worker per core), with the generator's paginated listing mapped:
# /PREFIX/resource-library?page=K -> /PREFIX/resource-library/page-K.html.
# /feeds/ answers with a precompressed .gz copy when the client takes gzip.
# The open file cache keeps sizes for 60 s: write files before starting it.
start_nginx() {
  local port=$1 root=$2
  mkdir -p "$WORK/nginx-tmp"
  cat >"$WORK/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 10000000; keepalive_timeout 65;
  open_file_cache max=1000 inactive=60s; open_file_cache_valid 60s;
  client_body_temp_path $WORK/nginx-tmp; proxy_temp_path $WORK/nginx-tmp;
  fastcgi_temp_path $WORK/nginx-tmp; uwsgi_temp_path $WORK/nginx-tmp; scgi_temp_path $WORK/nginx-tmp;
  server {
    listen 127.0.0.1:$port;
    root $root;
    location ~ ^(/.+)/resource-library\$ {
      try_files \$1/resource-library/page-\${arg_page}.html \$1/resource-library/page-1.html =404;
    }
    location /feeds/ {
      gzip_static on;
      types { application/rss+xml rss; application/atom+xml atom; }
    }
  }
}
EOF
  nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log"
  wait_port "$port"
}

stop_nginx() {
  if [ -f "$WORK/nginx.pid" ]; then
    local pid
    pid=$(cat "$WORK/nginx.pid")
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$WORK/nginx.pid"
  fi
}

# Selectors for the generator's markup, shared by every html source here.
selectors_toml() {
  cat <<'EOF'
[sources.select]
entry = "article.resource"
title = ".resource__title a"
link = ".resource__title a"
summary = ".resource__summary"
date = "time.resource__date"
category = "@data-category"
download = "a.resource__download"
EOF
}

# Wall time in seconds (ns clock) and peak RSS of CMD: `timed OUT -- CMD...`.
timed() {
  local out=$1
  shift 2
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -f '%M %x' -o "$out.time" "$@" >"$out.stdout" 2>"$out.stderr" || true
  t1=$(date +%s%N)
  local kib code
  read -r kib code < <(tail -1 "$out.time")
  awk -v a="$t0" -v b="$t1" -v k="$kib" -v c="$code" \
    'BEGIN{printf "%.4f %.1f %s\n", (b-a)/1e9, k/1024, c}' >"$out"
}
