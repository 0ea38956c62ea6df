#!/usr/bin/env bash
# Run the example system through one daily cycle under supervisord, show its
# status and checklist, and shut it all down. Called by `make demo`.
# Usage: scripts/demo.sh [--slurm] [prepare_run options, e.g. --simulate-outage rivers]
# --slurm: run run_model as a SLURM batch job on a single-node cluster started here
# for the demo (the config's one change: `model host: cluster`).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${NOWCAST_ENV:?}/bin/python"
# supervisorctl reaches supervisord through $NOWCAST_LOGS/supervisord.sock (supervisord.ini)
CONFIG=config/nowcast.yaml
INI=supervisord.ini
mkdir -p "$NOWCAST_LOGS" "$NOWCAST_DATA"
SLURM_DIR=""
if [ "${1:-}" = "--slurm" ]; then
    shift
    SLURM_DIR="$NOWCAST_LOGS/slurm-demo"
    rm -rf "$SLURM_DIR" && mkdir -p "$SLURM_DIR/cluster"
    # the one config change, made in a copy: run_model's host
    sed 's/^  model host: localhost$/  model host: cluster/' "$CONFIG" > "$SLURM_DIR/nowcast.yaml"
    echo "== the config change that runs run_model as a SLURM job:"
    diff -u "$CONFIG" "$SLURM_DIR/nowcast.yaml" | tail -n +3
    CONFIG="$SLURM_DIR/nowcast.yaml"
    grep -q '^  model host: cluster$' "$CONFIG" || { echo "cannot set model host in $CONFIG" >&2; exit 1; }
    sed -e "s|%(here)s/config/nowcast.yaml|$CONFIG|g" -e "s|%(here)s|$PWD|g" supervisord.ini > "$SLURM_DIR/supervisord.ini"
    INI="$SLURM_DIR/supervisord.ini"
fi
CTL=("$NOWCAST_ENV/bin/supervisorctl" -c "$INI")

cleanup() {
    # supervisord and what it runs, then any worker still running (they run in
    # sessions of their own): none outlives the demo
    "$PY" -m nowcast stop "$CONFIG" --grace 5 >/dev/null
    if [ -n "$SLURM_DIR" ]; then
        SLURM_CONF="$SLURM_DIR/cluster/slurm.conf" scancel --partition=debug 2>/dev/null
        echo "== stopping the local SLURM cluster"
        "$PY" -m nowcast.batch.local_cluster stop "$SLURM_DIR/cluster"
    fi
}
trap cleanup EXIT

if [ -n "$SLURM_DIR" ]; then
    echo "== starting a single-node SLURM cluster in $SLURM_DIR/cluster"
    "$PY" -m nowcast.batch.local_cluster start "$SLURM_DIR/cluster" || exit 1
    export SLURM_CONF="$SLURM_DIR/cluster/slurm.conf"
fi

if "${CTL[@]}" pid >/dev/null 2>&1; then
    echo "a supervisord for this system is already running; stop it first: nowcast stop config/nowcast.yaml" >&2
    trap - EXIT
    exit 1
fi

echo "== starting supervisord (message_broker, manager, scheduler, web)"
"$NOWCAST_ENV/bin/supervisord" -c "$INI" || exit 1
if ! "$PY" -m nowcast.status "$CONFIG" --timeout 15 >/dev/null; then
    echo "the manager did not answer; see $NOWCAST_LOGS/manager.out.log and $NOWCAST_LOGS/nowcast.log" >&2
    exit 1
fi

url=$("$PY" -m nowcast.web "$CONFIG" --url 2>/dev/null)
[ -n "$url" ] && echo "== the dashboard: $url (Today, Graph, Checklist, System; live)"

events_before=$(cat "$NOWCAST_LOGS/events.log" 2>/dev/null | wc -l)
since=$("$PY" -c 'import time; print(time.time())')
echo "== launching the first worker of today's cycle: workers.prepare_run $*"
"$PY" -m workers.prepare_run "$CONFIG" "$@" || exit 1

echo "== waiting for the cycle (messages as the manager receives them)"
"$PY" scripts/wait_for_cycle.py "$CONFIG" --last rotate_logs --since "$since" --timeout 120
result=$?

echo
echo "== supervisorctl -c $INI status"
"${CTL[@]}" status
echo
if [ -s "$NOWCAST_LOGS/checklist.log" ] && [ $result -eq 0 ]; then
    echo "== the day's checklist, as the manager logged it before clear_checklist ($NOWCAST_LOGS/checklist.log)"
    awk '/checklist:$/ {block=""} {block = block $0 "\n"} END {printf "%s", block}' "$NOWCAST_LOGS/checklist.log" | tail -n +2
    echo
fi
echo "== the checklist file now ($NOWCAST_LOGS/nowcast_checklist.yaml)"
cat "$NOWCAST_LOGS/nowcast_checklist.yaml"
page=$(ls -t "$NOWCAST_DATA"/*/summary.html 2>/dev/null | head -1)
[ -n "$page" ] && echo && echo "== published: $page"
if [ -n "$url" ]; then
    echo
    echo "== the dashboard: $url"
    if [ -t 0 ] && [ -t 1 ]; then
        read -r -p "   look at it now; press Enter to shut the system down " _ || true
    fi
fi
echo
echo "== shutting down (the manager sends the notifications it still holds)"
cleanup
trap - EXIT
echo
echo "== notifications of this run ($NOWCAST_LOGS/events.log, from the events: section)"
tail -n +$((events_before + 1)) "$NOWCAST_LOGS/events.log" 2>/dev/null
echo
echo "== nowcast history config/nowcast.yaml --days 1"
"$PY" -m nowcast.history "$CONFIG" --days 1
exit $result
