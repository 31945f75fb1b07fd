#!/usr/bin/env bash
# Stop hook, run with asyncRewake: waits in the background for a direct
# message to this agent's bus session (or an event on the channels in
# AGENT_EVENT_BUS_PUSH_CHANNELS) and wakes the idle agent with it:
# `agent-event-bus-cli wait` exits 2 and its stderr is shown to Claude.
# A timeout, a newer waiter for the same session (each Stop starts one) or
# any failure exits 0: nothing wakes. Install it with
#   agent-event-bus-cli install-hook --command /path/to/stop-wait.sh
# (or `make install-hooks`); its hook timeout (3600 s) must exceed
# AGENT_EVENT_BUS_WAIT_SECONDS (default 3540).
set -u
. "$(dirname "$0")/common.sh"
read_input

sid=$(bus_session)
[ -n "$sid" ] || exit 0
message=$("$CLI" wait --session-id "$sid" --timeout "${AGENT_EVENT_BUS_WAIT_SECONDS:-3540}" 2>&1 >/dev/null)
[ $? -eq 2 ] || exit 0
# `wait` reported what it printed delivered, so the UserPromptSubmit hook
# does not show it again; the agent's own cursor is untouched, so its next
# get_events(resume=true) still returns every message it has not read.
printf '%s\n' "$message" >&2
exit 2
