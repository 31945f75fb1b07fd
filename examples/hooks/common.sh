# Shared by the hook recipes (sourced, not run): reads the JSON Claude Code
# sends on stdin and keeps a little state per Claude Code session.
# Needs bash, jq and agent-event-bus-cli on PATH (or AGENT_EVENT_BUS_CLI).
# A hook must never get in the user's way: every failure here ends the hook
# quietly with exit 0.

CLI=${AGENT_EVENT_BUS_CLI:-agent-event-bus-cli}
STATE=${AGENT_EVENT_BUS_HOOK_STATE:-${TMPDIR:-/tmp}/agent-event-bus-hooks-$(id -u)}
mkdir -p "$STATE" 2>/dev/null && chmod 700 "$STATE" 2>/dev/null || exit 0

# Sets CC_SID, CC_CWD, SOURCE and KEY (CC_SID made safe for a file name).
read_input() {
    local input
    input=$(cat)
    CC_SID=$(jq -r '.session_id // empty' <<<"$input" 2>/dev/null)
    CC_CWD=$(jq -r '.cwd // empty' <<<"$input" 2>/dev/null)
    SOURCE=$(jq -r '.source // empty' <<<"$input" 2>/dev/null)
    [ -n "$CC_SID" ] || exit 0
    KEY=$(printf '%s' "$CC_SID" | tr -c 'A-Za-z0-9_-' '_')
}

# The bus session of the agent running this hook, found only by its proxy's
# client PID among our ancestors (the environment may name a session that
# is not on the bus). Prints nothing when the agent has no proxy session.
proxy_session() {
    env -u AGENT_EVENT_BUS_SESSION_ID -u CLAUDE_CODE_SESSION_ID "$CLI" whoami 2>/dev/null
}

# The session this Claude Code session uses on the bus, as SessionStart chose.
bus_session() {
    cat "$STATE/$KEY.session" 2>/dev/null || proxy_session
}

# Prints the hook output that adds $2 to the model's context for event $1.
emit_context() {
    jq -n --arg event "$1" --arg context "$2" \
        '{hookSpecificOutput: {hookEventName: $event, additionalContext: $context}}'
}
