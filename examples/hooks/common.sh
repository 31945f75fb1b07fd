# Shared by the hook recipes (sourced, not run): reads the JSON Claude Code
# sends on stdin and keeps a little state per Claude Code session.
# Needs bash, jq and agent-event-bus-cli on PATH (or AGENT_EVENT_BUS_CLI).
# A hook must never get in the user's way: every failure here ends the hook
# quietly with exit 0.

CLI=${AGENT_EVENT_BUS_CLI:-agent-event-bus-cli}
STATE=${AGENT_EVENT_BUS_HOOK_STATE:-${TMPDIR:-/tmp}/agent-event-bus-hooks-$(id -u)}

# The state directory must be private, as the CLI's own is: a real
# directory (not a link), ours, and writable by no one else, or another
# user could plant the session id a hook acts as. One that is not is left
# alone, and the hook does nothing.
private_dir() {
    [ -d "$1" ] && [ ! -L "$1" ] && [ -O "$1" ] &&
        [ -z "$(find "$1" -prune \( -perm -020 -o -perm -002 \) 2>/dev/null)" ]
}
( umask 077 && mkdir -p "$STATE" ) 2>/dev/null
if ! private_dir "$STATE"; then
    echo "agent-event-bus hook: $STATE is not a private directory of this user (a link, another user's, or writable by others); remove it, or set AGENT_EVENT_BUS_HOOK_STATE" >&2
    exit 0
fi

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

# jq definitions for other sessions' text put inside a hook's frame, the
# same rules as the CLI's text and the proxy's pushes (shared::text):
# `line` keeps a value on one line (control characters escaped as \n,
# \u001b, ...), `lines` keeps its newlines and tabs; both neutralise the
# frame tags a hook puts around text (and the ones Claude Code reads as its
# own): their "<" becomes "&lt;".
JQ_TEXT='
def unframed: gsub("<(?<t>\\s*/?\\s*(channel|event-bus-messages|recent-events|system-reminder|user-prompt-submit-hook)(?![A-Za-z0-9_-]))"; "&lt;\(.t)"; "i");
def hex4: [(./4096|floor)%16, (./256|floor)%16, (./16|floor)%16, .%16] | map("0123456789abcdef"[.:.+1]) | join("");
def escaped($keep): tostring | gsub("(?<c>[\\x{0}-\\x{1f}\\x{7f}-\\x{9f}\\x{2028}\\x{2029}\\x{202a}-\\x{202e}\\x{2066}-\\x{2069}])"; .c | explode[0] as $n | if ($keep | index([$n])) != null then [$n] | implode elif $n == 10 then "\\n" elif $n == 13 then "\\r" elif $n == 9 then "\\t" else "\\u" + ($n | hex4) end);
def line: unframed | escaped([]);
def lines: unframed | escaped([10, 9]);
'

# Prints the hook output that adds $2 to the model's context for event $1.
emit_context() {
    jq -n --arg event "$1" --arg context "$2" \
        '{hookSpecificOutput: {hookEventName: $event, additionalContext: $context}}'
}
