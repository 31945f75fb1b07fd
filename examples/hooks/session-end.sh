#!/usr/bin/env bash
# SessionEnd hook: unregisters the bus session only if the SessionStart hook
# registered it; a proxy's session is the proxy's to end. Clears this
# session's hook state either way.
set -u
. "$(dirname "$0")/common.sh"
read_input

if [ -f "$STATE/$KEY.registered" ]; then
    sid=$(cat "$STATE/$KEY.session" 2>/dev/null)
    [ -n "$sid" ] && "$CLI" unregister --session-id "$sid" >/dev/null 2>&1
fi
rm -f "$STATE/$KEY.registered" "$STATE/$KEY.session" "$STATE/$KEY.dm-cursor"
exit 0
