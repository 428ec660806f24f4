#!/usr/bin/env bash
# Digests to SMTP (issue 6): 10,000 subscribers with personalised digests sent
# by the release binary to Postfix's smtp-sink on loopback, against the sink's
# raw rate measured with Postfix's smtp-source in the same run.
#
#   benches/digests_smtp.sh [SUBSCRIBERS] [SESSIONS]     (defaults 10000, 8)
#
# Needs the Debian packages postfix (smtp-sink, smtp-source) and time; run as
# root (smtp-sink drops to nobody). Phases:
#   1. raw: smtp-source sends SUBSCRIBERS messages of 5 KiB over SESSIONS sessions.
#   2. queue: `digest send --now` renders and queues a digest per subscriber;
#      the relay URL points at a closed port and mail.max_attempts = 1, so every
#      send is refused at once and the row is marked failed (nothing delivered).
#   3. send: `outbox retry --failed` re-queues them all and delivers to the sink:
#      the delivery rate alone (claim, send, mark sent per message).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
sessions=${2:-8}
# TIDINGS: a built binary to measure (e.g. another commit's, for a before/after).
if [ -n "${TIDINGS:-}" ]; then
  bin=$TIDINGS
else
  cargo build --release --quiet
  bin=$PWD/target/release/tidings
fi
# DB_DIR puts the SQLite file elsewhere (e.g. /dev/shm, to see what fsync costs).
work=$(mktemp -d)
db_dir=${DB_DIR:-$work}
trap 'kill $sink_pid 2>/dev/null || true; rm -rf "$work" "$db_dir"/tidings-bench-$$.db*' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
closed=$(free_port)
smtp-sink -u nobody "127.0.0.1:$port" 1024 &
sink_pid=$!
sleep 0.5

secs() { python3 -c 'import sys; print(f"{float(sys.argv[2])-float(sys.argv[1]):.3f}")' "$1" "$2"; }
now() { date +%s.%N; }

t0=$(now)
smtp-source -s "$sessions" -m "$n" -l 5120 -f bench@example.org -t sink@example.org "127.0.0.1:$port"
t1=$(now)
raw=$(secs "$t0" "$t1")

mkdir -p "$work/seeds"
cp tests/fixtures/seeds/resource-library-page-4.txt "$work/seeds/"
cat > "$work/tidings.toml" <<TOML
[site]
title = "Tower Hamlets Together"
base_url = "https://feeds.example.org/"
[database]
url = "sqlite://$db_dir/tidings-bench-$$.db"
[mail]
transport = "smtp"
smtp_url = "smtp://127.0.0.1:$closed"
from = "Tower Hamlets Together <resources@example.org>"
concurrency = $sessions
timeout_s = 10
max_attempts = 1
TOML
cats=(leaflets news board-papers strategies-and-plans case-studies reports all "leaflets;news" "board-papers;reports")
python3 - "$n" "$work/people.csv" "${cats[@]}" <<'PY'
import sys
n, path, cats = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
with open(path, "w") as f:
    f.write("email,categories,frequency\n")
    for i in range(n):
        f.write(f"reader{i:05d}@example.org,{cats[i % len(cats)]},weekly\n")
PY
cd "$work"
"$bin" subscribers import people.csv --confirmed >/dev/null
"$bin" ingest >/dev/null 2>&1
export RUST_LOG=error
/usr/bin/time -f "%e %M" -o queue.time "$bin" digest send --now > queue.out || true
TIDINGS_SMTP_URL="smtp://127.0.0.1:$port" /usr/bin/time -f "%e %M" -o send.time "$bin" outbox retry --failed > send.out
# time(1) writes "Command exited with non-zero status" first when the exit is not 0.
read -r queue_s queue_kb < <(tail -1 queue.time)
read -r send_s send_kb < <(tail -1 send.time)
sent=$(grep -o 'sent [0-9]*' send.out | awk '{print $2}')
python3 - "$n" "$raw" "$queue_s" "$queue_kb" "$send_s" "$send_kb" "$sent" "$sessions" <<'PY'
import sys
n, raw, q, qkb, s, skb, sent, sessions = sys.argv[1:]
n, raw, q, s, sent = int(n), float(raw), float(q), float(s), int(sent)
raw_rate, send_rate, e2e = n / raw, sent / s, sent / (q + s)
print(f"subscribers            {n}")
print(f"smtp-source raw        {raw_rate:,.0f} msg/s  ({sessions} sessions, 5 KiB)")
print(f"queue (render+insert)  {n / q:,.0f} digests/s  ({q:.2f} s, peak RSS {int(qkb) // 1024} MiB)")
print(f"send (outbox -> sink)  {send_rate:,.0f} digests/s  ({s:.2f} s, {sent} sent, peak RSS {int(skb) // 1024} MiB)")
print(f"end to end             {e2e:,.0f} digests/s")
print(f"send / raw             {send_rate / raw_rate:.2f}")
PY
