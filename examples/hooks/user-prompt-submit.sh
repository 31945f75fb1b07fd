#!/usr/bin/env bash
# UserPromptSubmit hook: adds the direct messages (channel session:<id>) that
# no other path has delivered yet (a `wait` hook, the agent's own read) to
# the prompt's context, framed as information from peers, and reports them
# delivered. `agent-event-bus-cli inbox` keeps this hook's own cursor, so the
# agent's saved cursor is never consumed. Prints nothing when there is
# nothing new, or when the hub is down.
set -u
. "$(dirname "$0")/common.sh"
read_input

sid=$(bus_session)
[ -n "$sid" ] || exit 0
"$CLI" inbox --session-id "$sid" --hook-event UserPromptSubmit \
    --cursor-file "$STATE/$KEY.dm-cursor" 2>/dev/null
exit 0
