#!/usr/bin/env bash
# Issue 4: scraping, side by side, whole processes, wall time and peak RSS.
#   single  one 10,000-entry page (8.2 MB) served by nginx on loopback:
#           `tidings ingest` into a fresh SQLite file (fetch, parse,
#           reconcile, store) against rsspls 0.12 scraping the same page into
#           an RSS file (fetch, parse, write), each with an empty cache, so
#           both fetch the whole page every round.
#   paged   the same 10,000 entries as 834 pages of 12, `next_page` followed
#           with page_pause_ms = 0: `tidings ingest` (fresh database, so no
#           conditional requests), `tidings ingest --dry-run` (fetch, parse,
#           reconcile; nothing stored), and curl fetching the same 834 URLs
#           on one connection (many URLs on one command line reuse it).
# Rounds interleave the tools, alternating which goes first; the tables give
# medians and the median per-round ratio (tidings/rsspls, tidings/curl).
#
# Run:   benches/scrape_vs_rsspls.sh                      (ROUNDS=5)
#        ROUNDS=7 KEEP=1 RSSPLS=/path/to/rsspls benches/scrape_vs_rsspls.sh
# Needs: nginx, curl, python3, GNU time (/usr/bin/time); rsspls on PATH, in
#        /tmp/bench-tools/bin (`cargo install rsspls --root /tmp/bench-tools`)
#        or named by RSSPLS; cargo unless TIDINGS names a release binary.
#        Port 127.0.0.1:18280, or NGINX_PORT.
source "$(dirname "$0")/lib.sh"
need nginx curl
ROUNDS=${ROUNDS:-5}
NGINX_PORT=${NGINX_PORT:-18280}
RSSPLS=${RSSPLS:-$(command -v rsspls || echo /tmp/bench-tools/bin/rsspls)}
[ -x "$RSSPLS" ] || { echo "no rsspls: cargo install rsspls --root /tmp/bench-tools" >&2; exit 1; }
build_tidings
log "work folder $WORK"

site="$WORK/site"
"$PY" "$GEN" --entries 10000 --seed 7 --out "$site/n10000" --base /n10000 >/dev/null
start_nginx "$NGINX_PORT" "$site"
base="http://127.0.0.1:$NGINX_PORT/n10000/resource-library"
pages=$(find "$site/n10000/resource-library" -name 'page-*.html' | wc -l)

# tidings: one config per layout, a fresh database per run.
tidings_toml() { # URL EXTRA_TOML
  cat <<EOF
[database]
url = "sqlite://$WORK/db/tidings.db"
[[sources]]
name = "library"
kind = "html"
url = "$1"
page_pause_ms = 0
max_pages = 1000
max_bytes = 50000000
$2
EOF
  selectors_toml
}
tidings_toml "$base/all.html" "" >"$WORK/single.toml"
tidings_toml "$base?page=1" "" >"$WORK/paged.toml"
echo 'next_page = "a.pagination__next"' >>"$WORK/paged.toml"

cat >"$WORK/rsspls.toml" <<EOF
[rsspls]
output = "$WORK/rsspls-out"

[[feed]]
title = "Resource Library"
filename = "library.rss"
[feed.config]
url = "$base/all.html"
item = "article.resource"
heading = ".resource__title a"
link = ".resource__title a"
summary = ".resource__summary"
date = "time.resource__date"
media = "a.resource__download"
EOF

# curl: the URLs tidings follows, in order, on one command line.
curl_args=()
for k in $(seq 1 "$pages"); do curl_args+=(-o /dev/null "$base?page=$k"); done

fresh_db() { rm -rf "$WORK/db"; mkdir -p "$WORK/db"; }
run_tidings() { # LAYOUT OUT [--dry-run]
  fresh_db
  timed "$2" -- "$TIDINGS" --config "$WORK/$1.toml" ingest ${3:-}
}
run_rsspls() {
  rm -rf "$WORK/rsspls-out" "$WORK/xdg-cache"
  mkdir -p "$WORK/rsspls-out" "$WORK/xdg-cache"
  timed "$1" -- env XDG_CACHE_HOME="$WORK/xdg-cache" "$RSSPLS" --config "$WORK/rsspls.toml"
}
run_curl() { timed "$1" -- curl -sS --fail "${curl_args[@]}"; }

# One run of TOOL for CASE, checked, appended to the results.
results="$WORK/results.tsv"
: >"$results"
one() { # CASE ROUND TOOL
  local out="$WORK/run-$1-$3"
  case $1/$3 in
    single/tidings) run_tidings single "$out" ;;
    single/rsspls) run_rsspls "$out" ;;
    paged/tidings) run_tidings paged "$out" ;;
    paged/tidings-dry-run) run_tidings paged "$out" --dry-run ;;
    paged/curl) run_curl "$out" ;;
  esac
  local secs mib code
  read -r secs mib code <"$out"
  if [ "$code" != 0 ]; then echo "$1 $3 failed ($code):" >&2; cat "$out.stderr" >&2; exit 1; fi
  check "$1" "$3" "$out"
  printf '%s\t%s\t%s\tseconds\t%s\n%s\t%s\t%s\tpeak RSS MiB\t%s\n' \
    "$1" "$2" "$3" "$secs" "$1" "$2" "$3" "$mib" >>"$results"
  log "round $2 $1 $3: ${secs} s, ${mib} MiB"
}
# Every tool saw every entry.
check() { # CASE TOOL OUT
  case $2 in
    tidings | tidings-dry-run)
      grep -q '^library: 10000 new, 0 changed' "$3.stdout" || { cat "$3.stdout" "$3.stderr" >&2; exit 1; } ;;
    rsspls)
      local n
      n=$(grep -o '<item>' "$WORK/rsspls-out/library.rss" | wc -l)
      [ "$n" = 10000 ] || { echo "rsspls wrote $n items" >&2; exit 1; } ;;
  esac
}

log "warm-up (page cache, nginx)"
one single 0 tidings
one single 0 rsspls
one paged 0 curl
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then
    single=(tidings rsspls) paged=(tidings tidings-dry-run curl)
  else
    single=(rsspls tidings) paged=(curl tidings-dry-run tidings)
  fi
  for tool in "${single[@]}"; do one single "$round" "$tool"; done
  for tool in "${paged[@]}"; do one paged "$round" "$tool"; done
done

echo
echo "single page: 10,000 entries, $(stat -c %s "$site/n10000/resource-library/all.html") bytes; $ROUNDS rounds"
grep -P '^single\t' "$results" >"$WORK/single.tsv"
"$PY" "$BENCH_ROOT/benches/summarise.py" "$WORK/single.tsv" tidings rsspls
echo
echo "paged: $pages pages of 12 entries, page_pause_ms = 0; $ROUNDS rounds"
# The dry runs become a case of their own, compared with the same curl runs.
grep -P '^paged\t' "$results" | grep -v tidings-dry-run >"$WORK/paged.tsv"
grep -P '^paged\t' "$results" | grep -Pv '\ttidings\t' |
  sed 's/^paged\t/paged, --dry-run\t/; s/\ttidings-dry-run\t/\ttidings\t/' >>"$WORK/paged.tsv"
"$PY" "$BENCH_ROOT/benches/summarise.py" "$WORK/paged.tsv" tidings curl
