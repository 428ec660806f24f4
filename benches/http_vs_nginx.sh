#!/usr/bin/env bash
# Issue 3: /feeds/all.rss request throughput of `tidings serve` against nginx
# serving the same bytes, side by side, with `wrk -t2 -c64`, on three paths:
#   plain  GET, no Accept-Encoding: the 208 KB document
#   gzip   GET with Accept-Encoding: gzip: tidings's compressed-once copy;
#          nginx `gzip_static on` with those same .gz bytes beside the file
#   304    GET with Accept-Encoding: gzip and If-None-Match: each server's
#          own ETag for that request (checked to answer 304 before the runs)
# The feed: 100 items (the default feeds.max_items) ingested by `tidings
# ingest` from a generated single-page library served by nginx on loopback,
# whose entries carry four paragraphs (benches/feed_page.py), about 200 KB.
# Rounds interleave the servers (nginx first in odd rounds, tidings first in
# even ones); the table gives medians and the median per-round ratio.
#
# Run:   benches/http_vs_nginx.sh            (ROUNDS=5 DURATION=10 by default)
#        ROUNDS=7 DURATION=15 KEEP=1 TIDINGS=path/to/tidings benches/http_vs_nginx.sh
# Needs: nginx (with gzip_static: Debian's nginx-light has it), wrk, curl,
#        python3, GNU time; cargo unless TIDINGS names a release binary.
#        Ports 127.0.0.1:18180 (nginx) and :18190 (tidings), or NGINX_PORT /
#        TIDINGS_PORT.
source "$(dirname "$0")/lib.sh"
need nginx wrk curl
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
NGINX_PORT=${NGINX_PORT:-18180}
TIDINGS_PORT=${TIDINGS_PORT:-18190}
build_tidings

log "work folder $WORK"
site="$WORK/site"
mkdir -p "$site/library" "$site/feeds"
"$PY" "$GEN" --entries 100 --seed 7 --out "$WORK/gen" >/dev/null
"$PY" "$BENCH_ROOT/benches/feed_page.py" "$GEN" "$WORK/gen/entries.json" "$site/library/all.html" 100
start_nginx "$NGINX_PORT" "$site"

# Ingest the page, then serve the stored feeds with no sources to run.
common_toml() {
  cat <<EOF
[site]
title = "Tower Hamlets Together — Resource Library"
base_url = "https://feeds.example.org/"
[database]
url = "sqlite://$WORK/feed.db"
[server]
listen = "127.0.0.1:$TIDINGS_PORT"
[feeds]
max_items = 100
EOF
}
{
  common_toml
  printf '[[sources]]\nname = "library"\nkind = "html"\npage_pause_ms = 0\n'
  printf 'url = "http://127.0.0.1:%s/library/all.html"\n' "$NGINX_PORT"
  selectors_toml
} >"$WORK/ingest.toml"
{ echo 'sources = []'; common_toml; } >"$WORK/serve.toml"
"$TIDINGS" --config "$WORK/ingest.toml" ingest >&2
RUST_LOG=warn "$TIDINGS" --config "$WORK/serve.toml" serve 2>"$WORK/serve.log" &
STARTED_PIDS+=($!)
wait_port "$TIDINGS_PORT"

feed="http://127.0.0.1:$TIDINGS_PORT/feeds/all.rss"
curl -sf -o "$site/feeds/all.rss" "$feed"
curl -sf -H 'Accept-Encoding: gzip' -o "$site/feeds/all.rss.gz" "$feed"
touch -r "$site/feeds/all.rss" "$site/feeds/all.rss.gz"
# nginx caches open files and sizes: restart it now that the feed exists.
stop_nginx
start_nginx "$NGINX_PORT" "$site"

url_of() { case $1 in nginx) echo "http://127.0.0.1:$NGINX_PORT/feeds/all.rss" ;; tidings) echo "$feed" ;; esac; }
etag_of() {
  curl -sf -D - -o /dev/null -H 'Accept-Encoding: gzip' "$(url_of "$1")" |
    awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r'
}
declare -A ETAG=([nginx]=$(etag_of nginx) [tidings]=$(etag_of tidings))

# The same bytes from both, and a 304 from both for the 304 path's request.
for who in nginx tidings; do
  u=$(url_of "$who")
  curl -sf "$u" | cmp -s - "$site/feeds/all.rss" || { echo "$who: plain body differs" >&2; exit 1; }
  curl -sf -H 'Accept-Encoding: gzip' "$u" | cmp -s - "$site/feeds/all.rss.gz" ||
    { echo "$who: gzip body differs" >&2; exit 1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept-Encoding: gzip' -H "If-None-Match: ${ETAG[$who]}" "$u")
  [ "$code" = 304 ] || { echo "$who answered $code, not 304, to If-None-Match: ${ETAG[$who]}" >&2; exit 1; }
done
log "feed: $(stat -c %s "$site/feeds/all.rss") bytes, gzip $(stat -c %s "$site/feeds/all.rss.gz") bytes"

# run_wrk WHO PATH SECONDS -> requests per second (fails on socket errors or
# on any answer but the expected status).
run_wrk() {
  local who=$1 path=$2 secs=$3 u out
  u=$(url_of "$who")
  local args=(-t2 -c64 -d"${secs}s" --latency)
  case $path in
    gzip) args+=(-H 'Accept-Encoding: gzip') ;;
    304) args+=(-H 'Accept-Encoding: gzip' -H "If-None-Match: ${ETAG[$who]}") ;;
  esac
  out=$(wrk "${args[@]}" "$u")
  echo "$out" >>"$WORK/wrk.log"
  if echo "$out" | grep -q 'Socket errors'; then echo "$who $path: $out" >&2; exit 1; fi
  # wrk counts 304 as a success (3xx); a 200 slipping in would show as bytes.
  if [ "$path" != 304 ] && echo "$out" | grep -q 'Non-2xx'; then echo "$who $path: $out" >&2; exit 1; fi
  echo "$out" | awk '/^Requests\/sec/{print $2}'
}

log "warm-up"
for path in plain gzip 304; do for who in nginx tidings; do run_wrk "$who" "$path" 2 >/dev/null; done; done

results="$WORK/results.tsv"
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order=(nginx tidings); else order=(tidings nginx); fi
  for path in plain gzip 304; do
    for who in "${order[@]}"; do
      rps=$(run_wrk "$who" "$path" "$DURATION")
      printf '%s\t%s\t%s\trequests/s\t%s\n' "$path" "$round" "$who" "$rps" >>"$results"
      log "round $round $path $who: $rps req/s"
    done
  done
done

echo
echo "feed: /feeds/all.rss, $(stat -c %s "$site/feeds/all.rss") bytes (gzip $(stat -c %s "$site/feeds/all.rss.gz")), wrk -t2 -c64 -d${DURATION}s, $ROUNDS rounds"
"$PY" "$BENCH_ROOT/benches/summarise.py" "$results" tidings nginx
