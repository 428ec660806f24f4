#!/usr/bin/env bash
# Digest throughput with 1, 2 and 4 `tidings serve` replicas on one
# PostgreSQL (issue 7): SUBSCRIBERS confirmed subscribers, one scheduled
# weekly period falling due while every replica is already running, timed
# from the period's instant until every outbox row is `sent` to Postfix's
# smtp-sink on loopback. The sink's raw rate (smtp-source, same sink, same
# message size) is measured in the same run as the ceiling.
#
#   benches/digest_replicas.sh
#
# Environment (all optional): ROUNDS (3), REPLICAS ("1 2 4"), SUBSCRIBERS
# (10000), CONCURRENCY (mail.concurrency of every replica, 8), POLL_S (the
# delivery worker's idle poll in src/mail/deliver.rs, 5; only used to place
# the start of the replicas, see "Phase" below), TIDINGS (a built binary;
# else `cargo build --release`), KEEP=1 (keep the scratch folder and logs),
# PGHOST / PGPORT / PGUSER (127.0.0.1 / 5432 / postgres, trust auth),
# SINK_DELAY_MS (0: Postfix's smtp-sink answers at once; above 0, a relay
# that takes that long to answer each message's final dot, like a real
# relay's latency: an aiosmtpd sink, Debian's python3-aiosmtpd).
# Needs psql, createdb, dropdb, Postfix's smtp-sink and smtp-source (Debian
# package postfix) and /usr/bin/python3; run as root (smtp-sink drops to
# nobody).
#
# What one measurement is:
#   - a fresh database, copied (`createdb -T`) from a template that holds
#     SUBSCRIBERS confirmed subscribers imported from CSV and then the seeds
#     of tests/fixtures/seeds ingested, so every subscriber has a digest due;
#   - N replicas, each with its own server.listen port and otherwise the same
#     config (same database.url, mail.concurrency = CONCURRENCY, the sink as
#     relay), and digest.schedule set to one instant T a few seconds after
#     they start. Only the holder of the scheduler lease queues the period
#     (src/daemon.rs digest_loop); every replica's outbox worker delivers
#     (src/mail/deliver.rs, rows claimed FOR UPDATE SKIP LOCKED);
#   - the clock runs from T until the last row is sent: `outbox.sent_at`
#     and `digest_runs.claimed_at` give exact instants (psql polls only to
#     see the end); the end of queueing and who sent what come from the
#     replicas' JSON logs ("digest period done", and the per-message debug
#     line "sent" of tidings::mail::deliver, about 10,000 lines a run).
#
# Why a scheduled period and not `digest send --now`: this is how digests
# go out in production, and what an operator gets from adding replicas is
# what the daemons do with a period. `digest send --now` run beside the
# replicas would queue and then drain the outbox itself: one more process
# delivering (plus its own rendering), so N replicas would really be N + 1
# senders, and the replicas' share would depend on how soon their idle
# poll notices rows queued by someone else.
#
# Phase: a worker that nobody nudges looks for rows every POLL_S seconds,
# counted from its own start. Since queueing sends NOTIFY tidings_outbox
# after each committed chunk and every replica LISTENs, the poll no longer
# decides when workers join; it still did for builds before that (commit
# c488890, where only the leader's worker was nudged, once, after the whole
# period). So that such builds compare fairly, round r (of R) starts the
# replicas so their first poll after T falls about (r - 0.5) / R * POLL_S
# after T (0.8 s, 2.5 s and 4.2 s for 3 rounds): the rounds sample the phase
# evenly and the median is the typical case, not one accidental phase.
#
# Checks, per measurement (a failure is reported and the exit code is 1):
# the period queued SUBSCRIBERS digests; the outbox holds SUBSCRIBERS rows,
# SUBSCRIBERS distinct idem_keys, all `sent`, each after one attempt; the
# sink received exactly SUBSCRIBERS messages (smtp-sink -c counts every
# final "."). SUBSCRIBERS rows sent and SUBSCRIBERS messages received means
# each message reached the sink exactly once.
#
# CPU: /proc is sampled at T and at the end: the replicas (and the leader
# alone), PostgreSQL (the backends of this database plus the server's own
# processes; other databases' backends count as the rest), smtp-sink, and
# the rest of the machine (this script's psql, anyone else's work), in CPU
# seconds, and how busy all cores were over the window.

# shellcheck source=benches/lib.sh
. "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
REPLICAS=${REPLICAS:-"1 2 4"}
SUBSCRIBERS=${SUBSCRIBERS:-10000}
CONCURRENCY=${CONCURRENCY:-8}
POLL_S=${POLL_S:-5}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
DB_PREFIX=tidings_bench_$$
TEMPLATE=${DB_PREFIX}_template
RESULTS=$WORK/results.tsv
PY=/usr/bin/python3

need psql createdb dropdb smtp-sink smtp-source "$PY"
build_tidings

# Databases this run created, dropped on exit (after lib.sh's cleanup has
# stopped the processes that might still hold connections).
DATABASES=()
drop_databases() {
  for db in "${DATABASES[@]:-}"; do
    if [ -n "$db" ]; then dropdb --if-exists --force "$db" 2>/dev/null || true; fi
  done
}
trap 'cleanup; drop_databases' EXIT

sql() { psql -X -q -A -t -F ' ' -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
db_url() { echo "postgres://$PGUSER@$PGHOST:$PGPORT/$1"; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
sleep_until() {
  local wait
  wait=$(awk -v t="$1" -v n="$(now)" 'BEGIN { d = t - n; printf "%.3f", (d > 0 ? d : 0) }')
  sleep "$wait"
}
forget_pid() {
  local keep=() pid
  for pid in "${STARTED_PIDS[@]:-}"; do
    [ -n "$pid" ] && [ "$pid" != "$1" ] && keep+=("$pid")
  done
  STARTED_PIDS=("${keep[@]:-}")
}
# stop PID: SIGTERM, then wait for it to exit.
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget_pid "$1"
}
SINK_DELAY_MS=${SINK_DELAY_MS:-0}
# A relay with latency: aiosmtpd answering each message SINK_DELAY_MS after
# its final dot (sessions overlap; only each answer waits), and printing a
# running count in smtp-sink -c's form.
cat >"$WORK/slow_sink.py" <<'SINK'
import asyncio, sys
from aiosmtpd.smtp import SMTP

port, delay = int(sys.argv[1]), int(sys.argv[2]) / 1000

class Sink:
    received = 0
    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(delay)
        Sink.received += 1
        print(f"mesg={Sink.received}", flush=True)
        return "250 2.0.0 Ok"

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Sink(), hostname="sink"), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()

asyncio.run(main())
SINK
# start_sink NAME PORT: a sink counting every message into $WORK/NAME.sink.
start_sink() {
  if [ "$SINK_DELAY_MS" -gt 0 ]; then
    "$PY" "$WORK/slow_sink.py" "$2" "$SINK_DELAY_MS" >"$WORK/$1.sink" 2>&1 &
  else
    smtp-sink -u nobody -c "127.0.0.1:$2" 1024 >"$WORK/$1.sink" 2>&1 &
  fi
  SINK_PID=$!
  STARTED_PIDS+=("$SINK_PID")
  wait_port "$2"
}
# Messages the sink received (its counter's last value).
sink_count() { tr '\r' '\n' <"$WORK/$1.sink" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2; }
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"; }

# Helpers in Python: CPU snapshots from /proc, per-replica figures from the
# JSON logs, and the summary tables.
cat >"$WORK/helpers.py" <<'PY'
import json, os, pwd, statistics, sys
from collections import defaultdict
from datetime import datetime

def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime

def snap(out):
    """Every process's CPU ticks and owner (and postgres' command lines), and
    the machine's busy and total ticks."""
    pg_uid = pwd.getpwnam("postgres").pw_uid
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                uid = os.stat(f"/proc/{name}").st_uid
                cmd = open(f"/proc/{name}/cmdline", "rb").read().decode(errors="replace") if uid == pg_uid else ""
                procs[name] = [ticks(name), uid, cmd]
            except (OSError, IndexError, ValueError):
                pass
    idle = cpu[3] + cpu[4]
    json.dump({"busy": sum(cpu[:8]) - idle, "all": sum(cpu[:8]), "procs": procs}, open(out, "w"))

def ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

def ours_in_postgres(cmd, db):
    """A backend of our database, or a server process serving no client
    (postmaster, WAL writer, checkpointer...); not other users' backends."""
    if db in cmd:
        return True
    return "(" not in cmd and "[local]" not in cmd and "autovacuum worker" not in cmd

def analyse(before, after, t0, db, sink, *replicas):
    """CPU seconds between two snapshots: the replicas (and the leader
    alone), postgres, the sink and the rest of the machine, and how busy
    the machine was; from the replicas' logs (PID:LOG each): when the
    period was queued, the leader's share of the messages and when the
    other replicas sent their first one."""
    a, b = json.load(open(before)), json.load(open(after))
    hz = os.sysconf("SC_CLK_TCK")
    pg_uid = pwd.getpwnam("postgres").pw_uid
    def delta(pid):
        return b["procs"][pid][0] - a["procs"].get(pid, [0])[0] if pid in b["procs"] else 0
    t0 = float(t0)
    reps = leader_cpu = 0
    leader_sent, others_sent, joins, queue_done = 0, 0, [], None
    for item in replicas:
        pid, log = item.split(":", 1)
        reps += delta(pid)
        sent, first, leader = 0, None, False
        for line in open(log, errors="replace"):
            try:
                e = json.loads(line)
            except ValueError:
                continue
            msg = e.get("message")
            if msg == "scheduler lease changed hands" and e.get("leader") is True:
                leader = True
            elif msg == "digest period done" and e.get("schedule") == "weekly":
                queue_done = ts(e["timestamp"])
            elif msg == "sent" and e.get("target", "").endswith("mail::deliver"):
                sent += 1
                first = ts(e["timestamp"]) if first is None else first
        if leader:
            leader_sent += sent
            leader_cpu += delta(pid)
        else:
            others_sent += sent
            if first is not None:
                joins.append(first - t0)
    snk = delta(sink)
    pg = sum(delta(p) for p, (_, uid, cmd) in b["procs"].items()
             if uid == pg_uid and ours_in_postgres(cmd, db))
    busy = b["busy"] - a["busy"]
    print(f"cpu_replicas {reps / hz:.2f}")
    print(f"cpu_leader {leader_cpu / hz:.2f}")
    print(f"cpu_postgres {pg / hz:.2f}")
    print(f"cpu_sink {snk / hz:.2f}")
    print(f"cpu_other {max(busy - reps - pg - snk, 0) / hz:.2f}")
    print(f"busy_pct {100 * busy / max(b['all'] - a['all'], 1):.0f}")
    if queue_done is not None:
        print(f"queue_done {queue_done:.6f}")
    if leader_sent + others_sent:
        print(f"leader_share {leader_sent / (leader_sent + others_sent):.3f}")
    if joins:
        print(f"others_join_s {statistics.median(joins):.2f}")

def summary(path, raw_sessions):
    rows = defaultdict(dict)  # (n, metric) -> {round: value}
    for line in open(path):
        rnd, n, metric, value = line.rstrip("\n").split("\t")
        rows[(n, metric)][rnd] = float(value)
    ns = sorted({n for n, _ in rows if n.isdigit()}, key=int)
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    def col(n, metric):
        return rows.get((n, metric), {})
    def cell(n, metric, fmt="{:.2f}"):
        vals = list(col(n, metric).values())
        return fmt.format(med(vals)) if vals else "-"
    def spread(n, metric, fmt):
        vals = list(col(n, metric).values())
        if not vals:
            return "-"
        return f"{fmt.format(med(vals))} ({fmt.format(min(vals))}-{fmt.format(max(vals))})"
    base = ns[0]
    print(f"| replicas | msg/s: median (min-max) | ratio to {base} replica: median (min-max) of per-round ratios | T to last sent, s | T to all queued, s | T to first sent, s | sent while queueing | msg/s after queueing | others' first send after T, s | leader's share |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in ns:
        r, b = col(n, "msgs_per_s"), col(base, "msgs_per_s")
        ratios = [r[k] / b[k] for k in r if k in b and b[k]]
        ratio = f"{med(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})" if ratios else "-"
        print(f"| {n} | {spread(n, 'msgs_per_s', '{:,.0f}')} | {ratio} | {cell(n, 'total_s')} | {cell(n, 'queue_s')} "
              f"| {cell(n, 'first_sent_s')} | {cell(n, 'sent_while_queueing', '{:,.0f}')} | {cell(n, 'after_queue_msgs_per_s', '{:,.0f}')} | {cell(n, 'others_join_s')} "
              f"| {cell(n, 'leader_share')} |")
    print()
    print("| replicas | CPU s, replicas | of which the leader | CPU s, postgres | CPU s, smtp-sink | CPU s, rest of machine | machine busy % |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in ns:
        print(f"| {n} | {cell(n, 'cpu_replicas')} | {cell(n, 'cpu_leader')} | {cell(n, 'cpu_postgres')} | {cell(n, 'cpu_sink')} "
              f"| {cell(n, 'cpu_other')} | {cell(n, 'busy_pct', '{:.0f}')} |")
    print()
    print("| smtp-source -> smtp-sink (ceiling) | msg/s: median (min-max) | best replica median / this |")
    print("| --- | ---: | ---: |")
    best = max((med(list(col(n, "msgs_per_s").values())) for n in ns), default=float("nan"))
    for s in raw_sessions.split():
        vals = list(col("raw", f"raw_{s}_sessions").values())
        if vals:
            print(f"| {s} sessions, connections reused (-d) | {spread('raw', f'raw_{s}_sessions', '{:,.0f}')} | {best / med(vals):.2f} |")

cmd, *args = sys.argv[1:]
{"snap": snap, "analyse": analyse, "summary": summary}[cmd](*args)
PY
helper() { "$PY" "$WORK/helpers.py" "$@"; }

# --- The template database: subscribers first, then the resources. -----------
log "preparing $TEMPLATE: $SUBSCRIBERS subscribers, then the seeds"
mkdir -p "$WORK/seeds"
cp "$BENCH_ROOT"/tests/fixtures/seeds/*.txt "$WORK/seeds/"
# write_config FILE LISTEN_PORT DB SINK_PORT SCHEDULE
write_config() {
  cat >"$1" <<TOML
[site]
title = "Tower Hamlets Together"
base_url = "https://feeds.example.org/"
timezone = "UTC"
[database]
url = "$(db_url "$3")"
[server]
listen = "127.0.0.1:$2"
[mail]
transport = "smtp"
smtp_url = "smtp://127.0.0.1:$4"
from = "Tower Hamlets Together <resources@example.org>"
concurrency = $CONCURRENCY
timeout_s = 10
[digest]
schedule = "$5"
[[sources]]
name = "seeds"
kind = "seed"
path = "$WORK/seeds"
TOML
}
cats=(leaflets news board-papers strategies-and-plans case-studies reports all "leaflets;news" "board-papers;reports")
"$PY" - "$SUBSCRIBERS" "$WORK/people.csv" "${cats[@]}" <<'PY'
import sys
n, path, cats = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
with open(path, "w") as f:
    f.write("email,categories,frequency\n")
    for i in range(n):
        f.write(f"reader{i:05d}@example.org,{cats[i % len(cats)]},weekly\n")
PY
createdb "$TEMPLATE"
DATABASES+=("$TEMPLATE")
write_config "$WORK/template.toml" "$(free_port)" "$TEMPLATE" 25 "0 0 8 * * Mon"
(
  cd "$WORK"
  "$TIDINGS" --config template.toml db migrate >/dev/null
  "$TIDINGS" --config template.toml subscribers import people.csv --confirmed >/dev/null
  "$TIDINGS" --config template.toml ingest >/dev/null
)
confirmed=$(sql "$TEMPLATE" "SELECT count(*) FROM subscribers WHERE status = 'confirmed'")
[ "$confirmed" = "$SUBSCRIBERS" ] || { echo "template has $confirmed confirmed subscribers, not $SUBSCRIBERS" >&2; exit 1; }
MSG_BYTES=0
FAILURES=0

# --- One measurement ---------------------------------------------------------
# measure ROUND N
measure() {
  local round=$1 n=$2 tag="r$1-n$2" db="${DB_PREFIX}_r$1_n$2"
  createdb -T "$TEMPLATE" "$db"
  DATABASES+=("$db")
  local sink_port
  sink_port=$(free_port)
  start_sink "$tag" "$sink_port"
  local sink_pid=$SINK_PID
  # T: a whole second (cron has second resolution) 2 poll periods ahead; the
  # replicas start so that their polls land (round - 0.5) / ROUNDS * POLL_S after T.
  local t0 start
  t0=$(( $(date +%s) + 2 * POLL_S + 1 ))
  start=$(awk -v t="$t0" -v r="$round" -v R="$ROUNDS" -v p="$POLL_S" 'BEGIN { printf "%.3f", t - 2 * p + (r - 0.5) / R * p }')
  local schedule
  schedule=$(date -u -d "@$t0" '+%-S %-M %-H * * *')
  local pids=() logs=() ports=() i port
  for i in $(seq 1 "$n"); do
    port=$(free_port)
    ports+=("$port")
    write_config "$WORK/$tag-replica$i.toml" "$port" "$db" "$sink_port" "$schedule"
  done
  sleep_until "$start"
  for i in $(seq 1 "$n"); do
    (cd "$WORK" && RUST_LOG="warn,tidings=info,tidings::mail::deliver=debug" \
      exec "$TIDINGS" --config "$tag-replica$i.toml" --log-format json serve) 2>"$WORK/$tag-replica$i.log" &
    pids+=("$!")
    logs+=("$WORK/$tag-replica$i.log")
    STARTED_PIDS+=("$!")
  done
  for port in "${ports[@]}"; do wait_port "$port"; done
  # Ready: one replica holds the lease and has recorded the baseline period,
  # so it is asleep until T.
  local ready=0
  for _ in $(seq 1 50); do
    ready=$(sql "$db" "SELECT count(*) FROM digest_runs WHERE schedule = 'weekly' AND baseline = 1")
    [ "$ready" = 1 ] && break
    sleep 0.1
  done
  if [ "$ready" != 1 ] || awk -v t="$t0" -v n="$(now)" 'BEGIN { exit !(n > t - 0.5) }'; then
    echo "round $round, $n replicas: not ready before T; see $WORK/$tag-replica*.log (KEEP=1)" >&2
    exit 1
  fi
  sleep_until "$t0"
  helper snap "$WORK/$tag.cpu0"
  # Done when the period is finished and nothing is left to send.
  local state deadline
  deadline=$(( t0 + 300 ))
  while :; do
    state=$(sql "$db" "SELECT (SELECT count(*) FROM digest_runs WHERE schedule = 'weekly' AND baseline = 0 AND finished_at IS NOT NULL), (SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending'))")
    [ "$state" = "1 0" ] && break
    if [ "$(date +%s)" -gt "$deadline" ]; then
      echo "round $round, $n replicas: not done after 300 s (finished runs, unsent rows: $state)" >&2
      break
    fi
    sleep 0.5
  done
  helper snap "$WORK/$tag.cpu1"
  # digest_runs.finished_at is written with the instant the period started,
  # so the end of queueing comes from the leader's "digest period done" log line.
  local queued claimed rows keys sent max_attempts first last bytes
  read -r queued claimed < <(sql "$db" "SELECT queued, extract(epoch FROM claimed_at::timestamptz) FROM digest_runs WHERE schedule = 'weekly' AND baseline = 0")
  read -r rows keys sent max_attempts first last bytes < <(sql "$db" "SELECT count(*), count(DISTINCT idem_key), count(*) FILTER (WHERE status = 'sent'), COALESCE(max(attempts), 0), extract(epoch FROM min(sent_at::timestamptz)), extract(epoch FROM max(sent_at::timestamptz)), COALESCE(avg(octet_length(message))::bigint, 0) FROM outbox")
  for pid in "${pids[@]}"; do stop "$pid"; done
  local received
  received=$(sink_count "$tag")
  stop "$sink_pid"
  local analysis finished during="" i pairs=()
  for i in "${!pids[@]}"; do pairs+=("${pids[$i]}:${logs[$i]}"); done
  analysis=$(helper analyse "$WORK/$tag.cpu0" "$WORK/$tag.cpu1" "$t0" "$db" "$sink_pid" "${pairs[@]}")
  finished=$(awk '$1 == "queue_done" { print $2 }' <<<"$analysis")
  if [ -n "$finished" ]; then
    during=$(sql "$db" "SELECT count(*) FROM outbox WHERE sent_at::timestamptz <= to_timestamp($finished)")
  fi
  dropdb --force "$db"
  local expect=$SUBSCRIBERS
  if [ "$queued" != "$expect" ] || [ "$rows" != "$expect" ] || [ "$keys" != "$expect" ] \
    || [ "$sent" != "$expect" ] || [ "$max_attempts" != 1 ] || [ "${received:-0}" != "$expect" ]; then
    echo "FAILED round $round, $n replicas: queued $queued, rows $rows, distinct keys $keys, sent $sent, max attempts $max_attempts, sink received ${received:-0} (expected $expect each, attempts 1)" >&2
    FAILURES=$((FAILURES + 1))
    return
  fi
  [ "$MSG_BYTES" = 0 ] && MSG_BYTES=$bytes
  local total
  total=$(awk -v a="$t0" -v b="$last" 'BEGIN { printf "%.3f", b - a }')
  record "$round" "$n" total_s "$total"
  record "$round" "$n" msgs_per_s "$(awk -v s="$sent" -v t="$total" 'BEGIN { printf "%.1f", s / t }')"
  record "$round" "$n" claim_lag_s "$(awk -v a="$t0" -v b="$claimed" 'BEGIN { printf "%.3f", b - a }')"
  record "$round" "$n" first_sent_s "$(awk -v a="$t0" -v b="$first" 'BEGIN { printf "%.3f", b - a }')"
  if [ -n "$finished" ]; then
    record "$round" "$n" queue_s "$(awk -v a="$t0" -v b="$finished" 'BEGIN { printf "%.3f", b - a }')"
    record "$round" "$n" sent_while_queueing "$during"
    # What was left when queueing ended, over the time it took to send it.
    record "$round" "$n" after_queue_msgs_per_s "$(awk -v s="$sent" -v d="$during" -v a="$finished" -v b="$last" 'BEGIN { printf "%.1f", (b > a ? (s - d) / (b - a) : 0) }')"
  fi
  local key value
  while read -r key value; do
    [ "$key" = queue_done ] || record "$round" "$n" "$key" "$value"
  done <<<"$analysis"
  log "round $round, $n replicas: $(awk -v s="$sent" -v t="$total" 'BEGIN { printf "%d sent in %.2f s = %.0f msg/s", s, t, s / t }'), queued by T+$(awk -v a="$t0" -v b="${finished:-$t0}" 'BEGIN { printf "%.2f", b - a }') s, $during sent meanwhile, sink received $received"
}

# raw ROUND SESSIONS: smtp-source's rate into the same kind of sink.
raw() {
  local tag="r$1-raw$2" port t0 t1 received
  port=$(free_port)
  start_sink "$tag" "$port"
  t0=$(now)
  smtp-source -d -s "$2" -m "$SUBSCRIBERS" -l "$MSG_BYTES" -f bench@example.org -t sink@example.org "127.0.0.1:$port"
  t1=$(now)
  sleep 0.2
  received=$(sink_count "$tag")
  stop "$SINK_PID"
  [ "$received" = "$SUBSCRIBERS" ] || { echo "smtp-sink received $received of $SUBSCRIBERS from smtp-source" >&2; FAILURES=$((FAILURES + 1)); }
  record "$1" raw "raw_$2_sessions" "$(awk -v n="$SUBSCRIBERS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')"
}

# --- Rounds: the replica counts rotate so none always goes first. -------------
read -r -a counts <<<"$REPLICAS"
max_n=0
for n in "${counts[@]}"; do [ "$n" -gt "$max_n" ] && max_n=$n; done
started=$(date +%s)
for round in $(seq 1 "$ROUNDS"); do
  for k in $(seq 0 $((${#counts[@]} - 1))); do
    measure "$round" "${counts[$(((k + round - 1) % ${#counts[@]}))]}"
  done
  [ "$MSG_BYTES" = 0 ] && MSG_BYTES=5120
  raw "$round" "$CONCURRENCY"
  raw "$round" $((CONCURRENCY * max_n))
done

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $ROUNDS rounds, $SUBSCRIBERS subscribers, mail.concurrency $CONCURRENCY per replica, relay answering after ${SINK_DELAY_MS} ms, digests of $MSG_BYTES bytes on average, $(( $(date +%s) - started )) s for the rounds"
echo
helper summary "$RESULTS" "$CONCURRENCY $((CONCURRENCY * max_n))"
if [ "$FAILURES" -gt 0 ]; then
  echo "$FAILURES check(s) failed; see above" >&2
  exit 1
fi
