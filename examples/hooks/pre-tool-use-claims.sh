#!/usr/bin/env bash
# PreToolUse hook (matcher Edit|Write|MultiEdit): when another session on the
# bus holds a claim on the file about to be edited (the file itself, or a
# directory above it), tells the agent who holds it and why — the
# additionalContext reaches the model — and shows the user the same line.
# It makes no permission decision: the user's settings still decide whether
# to ask or go ahead. Claims end with their session, so a holder here is live.
# With AGENT_EVENT_BUS_CLAIM_ON_EDIT=1 it also claims the file for this
# session on its first edit when nobody else holds it (off by default).
set -u
. "$(dirname "$0")/common.sh"
input=$(cat)
read_input <<<"$input"

file=$(jq -r '.tool_input.file_path // empty' <<<"$input" 2>/dev/null)
[ -n "$file" ] || exit 0
cd "${CC_CWD:-.}" 2>/dev/null || true
sid=$(bus_session)

claims=$("$CLI" claims --file "$file" --json 2>/dev/null) || exit 0
others=$(jq -c --arg sid "$sid" '[.[] | select(.session_id != $sid)]' <<<"$claims" 2>/dev/null)
if [ -z "$others" ] || [ "$others" = "[]" ]; then
    if [ "${AGENT_EVENT_BUS_CLAIM_ON_EDIT:-0}" = 1 ] && [ -n "$sid" ] &&
        ! jq -e 'length > 0' <<<"$claims" >/dev/null 2>&1; then
        "$CLI" claim --file "$file" --session-id "$sid" --note "editing" >/dev/null 2>&1
    fi
    exit 0
fi

held=$(jq -r "$JQ_TEXT"'.[] | "- \(.resource | line): \(.name // .session_id | line) (\(.display_id // "?" | line), session \(.session_id | line)), \(if .exclusive then "exclusive" else "shared" end) since \(.since | line)\(if .note then "; note: \(.note | line)" else "" end)"' <<<"$others")
jq -n --arg context "Another agent session on the event bus has claimed this file (an advisory claim, not a lock):
$held
Before editing $file, coordinate: message the holder with publish_event(channel=\"session:<their session id>\"), work on something else, or go ahead only if the user agrees." \
    --arg user "agent-event-bus: $file is claimed by another session:
$held" \
    '{hookSpecificOutput: {hookEventName: "PreToolUse", additionalContext: $context}, systemMessage: $user}'
