#!/usr/bin/env bash
# Run the example system through one daily cycle under supervisord, show its
# status and checklist, and shut it all down. Called by `make demo`.
# Usage: scripts/demo.sh [prepare_run options, e.g. --simulate-outage rivers]
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${NOWCAST_ENV:?}/bin/python"
# supervisorctl reaches supervisord through $NOWCAST_LOGS/supervisord.sock (supervisord.ini)
CTL=("$NOWCAST_ENV/bin/supervisorctl" -c supervisord.ini)
mkdir -p "$NOWCAST_LOGS" "$NOWCAST_DATA"

cleanup() {
    # supervisord and what it runs, then any worker still running (they run in
    # sessions of their own): none outlives the demo
    "$PY" -m nowcast stop config/nowcast.yaml --grace 5 >/dev/null
}
trap cleanup EXIT

if "${CTL[@]}" pid >/dev/null 2>&1; then
    echo "a supervisord for this system is already running; stop it first: nowcast stop config/nowcast.yaml" >&2
    trap - EXIT
    exit 1
fi

echo "== starting supervisord (message_broker, manager, scheduler, web)"
"$NOWCAST_ENV/bin/supervisord" -c supervisord.ini || exit 1
if ! "$PY" -m nowcast.status config/nowcast.yaml --timeout 15 >/dev/null; then
    echo "the manager did not answer; see $NOWCAST_LOGS/manager.out.log and $NOWCAST_LOGS/nowcast.log" >&2
    exit 1
fi

url=$("$PY" -m nowcast.web config/nowcast.yaml --url 2>/dev/null)
[ -n "$url" ] && echo "== the dashboard: $url (Today, Graph, Checklist, System; live)"

events_before=$(cat "$NOWCAST_LOGS/events.log" 2>/dev/null | wc -l)
since=$("$PY" -c 'import time; print(time.time())')
echo "== launching the first worker of today's cycle: workers.prepare_run $*"
"$PY" -m workers.prepare_run config/nowcast.yaml "$@" || exit 1

echo "== waiting for the cycle (messages as the manager receives them)"
"$PY" scripts/wait_for_cycle.py config/nowcast.yaml --last rotate_logs --since "$since" --timeout 120
result=$?

echo
echo "== supervisorctl -c supervisord.ini status"
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
"$PY" -m nowcast.history config/nowcast.yaml --days 1
exit $result
