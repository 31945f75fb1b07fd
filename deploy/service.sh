#!/bin/sh
# Runs the hub as a per-user service and wires Claude Code to it: a systemd
# user unit on Linux, a LaunchAgent on macOS. The Makefile's install-server,
# install-client, uninstall, restart and logs targets call this. Every step
# is idempotent: running it again converges to the same setup.
#
# usage: deploy/service.sh render [linux|macos]   write the unit/plist, print its path
#        deploy/service.sh install-server         render, (re)start the hub, register the proxy
#        deploy/service.sh install-client URL     point Claude Code's proxy at a remote hub
#                                                 (token from $AGENT_EVENT_BUS_TOKEN; on the
#                                                 hub's machine `agent-event-bus-cli token`)
#        deploy/service.sh uninstall              remove service, proxy entry, binaries; keep data
#        deploy/service.sh restart | logs
# env:   BINDIR (default ~/.local/bin) where `make install` put the binaries;
#        DRY_RUN=1 prints each command that would change the system instead.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
BINDIR=${BINDIR:-$HOME/.local/bin}
LABEL=com.agent-event-bus.hub
UNIT=agent-event-bus.service
MCP_NAME=agent-event-bus
BINS="agent-event-bus agent-event-bus-proxy agent-event-bus-cli"
CONFIG_HOME=${XDG_CONFIG_HOME:-$HOME/.config}
ENV_FILE=$CONFIG_HOME/agent-event-bus/hub.env
DATA_DIR=$HOME/.claude/contrib/agent-event-bus
LOG_FILE=$DATA_DIR/agent-event-bus.log

die() {
    echo "$*" >&2
    exit 1
}

os() {
    case ${1:-$(uname -s)} in
    linux | Linux) echo linux ;;
    macos | Darwin) echo macos ;;
    *) die "unsupported system '${1:-$(uname -s)}': the service runs on Linux (systemd) and macOS (launchd)" ;;
    esac
}

unit_path() { echo "$CONFIG_HOME/systemd/user/$UNIT"; }
plist_path() { echo "$HOME/Library/LaunchAgents/$LABEL.plist"; }

# Runs a command that changes the system, or only shows it under DRY_RUN
# (with the token, if any, masked).
run() {
    if [ -n "${DRY_RUN:-}" ]; then
        printf '+'
        for arg in "$@"; do
            case $arg in AGENT_EVENT_BUS_TOKEN=*) arg="AGENT_EVENT_BUS_TOKEN=<token>" ;; esac
            printf ' %s' "$arg"
        done
        printf '\n'
    else
        "$@"
    fi
}

# [run], for steps whose failure only means "was not there".
run_quietly() {
    if [ -n "${DRY_RUN:-}" ]; then run "$@"; else "$@" >/dev/null 2>&1 || true; fi
}

render() {
    target=$(os "${1:-}")
    case $target in
    linux) dest=$(unit_path) template=$here/agent-event-bus.service ;;
    macos) dest=$(plist_path) template=$here/$LABEL.plist ;;
    esac
    # The data directory exists before the service starts (its sandbox
    # makes only this directory writable) and is this user's alone.
    mkdir -p "$(dirname "$dest")" "$DATA_DIR" "$(dirname "$ENV_FILE")"
    chmod 700 "$DATA_DIR"
    sed -e "s|@BINDIR@|$BINDIR|g" -e "s|@ENV_FILE@|$ENV_FILE|g" -e "s|@LOG_FILE@|$LOG_FILE|g" \
        -e "s|@DATA_DIR@|$DATA_DIR|g" "$template" >"$dest.tmp"
    mv "$dest.tmp" "$dest"
    echo "$dest"
}

# (Re)registers the proxy with Claude Code at user scope, when `claude` is
# here. $remote_url: a remote hub's URL (empty: the hub on this machine,
# whose token the proxy reads from its file itself); a remote hub's token
# comes from $AGENT_EVENT_BUS_TOKEN.
register_proxy() {
    proxy=$BINDIR/agent-event-bus-proxy
    if ! command -v claude >/dev/null 2>&1; then
        echo "claude is not on PATH; register the proxy later with:"
        echo "  claude mcp add --scope user $MCP_NAME -- $proxy"
        return 0
    fi
    run_quietly claude mcp remove --scope user "$MCP_NAME"
    set -- claude mcp add --scope user
    if [ -n "${remote_url:-}" ]; then
        set -- "$@" -e "AGENT_EVENT_BUS_URL=$remote_url"
        if [ -n "${AGENT_EVENT_BUS_TOKEN:-}" ]; then set -- "$@" -e "AGENT_EVENT_BUS_TOKEN=$AGENT_EVENT_BUS_TOKEN"; fi
    fi
    run "$@" "$MCP_NAME" -- "$proxy"
}

# Waits (a few seconds at most) for the hub to answer, then prints `doctor`.
check() {
    [ -z "${DRY_RUN:-}" ] || return 0
    cli=$BINDIR/agent-event-bus-cli
    tries=0
    until "$cli" sessions >/dev/null 2>&1 || [ "$tries" -ge 20 ]; do
        tries=$((tries + 1))
        sleep 0.5
    done
    "$cli" doctor || true
}

start_service() {
    OS=$(os)
    case $OS in
    linux)
        run systemctl --user daemon-reload
        run systemctl --user enable "$UNIT"
        # restart, not start: a reinstall must pick up the new binary.
        run systemctl --user restart "$UNIT"
        ;;
    macos)
        run_quietly launchctl bootout "gui/$(id -u)/$LABEL"
        run launchctl bootstrap "gui/$(id -u)" "$(plist_path)"
        ;;
    esac
}

install_server() {
    [ -x "$BINDIR/agent-event-bus" ] || die "$BINDIR/agent-event-bus is missing: run \`make install\` first"
    old=$HOME/Library/LaunchAgents/com.evansenter.agent-event-bus.plist
    if [ -f "$old" ]; then
        echo "note: the original Python hub's LaunchAgent ($old) wants port 8080 too;"
        echo "      stop it with: launchctl bootout gui/$(id -u)/com.evansenter.agent-event-bus"
    fi
    dest=$(render)
    echo "Wrote $dest"
    start_service
    remote_url=
    register_proxy
    echo "Settings (HOST, PORT, AGENT_EVENT_BUS_TOKEN, ...) go in $ENV_FILE; then: make restart"
    echo "The hub keeps its token in $DATA_DIR/token; this user's proxy and CLI read it."
    echo "For a client on another machine: \`agent-event-bus-cli token\` prints it (give it as TOKEN=...)."
    check
}

install_client() {
    remote_url=${1:-}
    [ -n "$remote_url" ] || die "usage: make install-client REMOTE_URL=https://HOST/agent-event-bus [TOKEN=...]"
    register_proxy
    echo "For the CLI and hooks, add to your shell profile:"
    echo "  export AGENT_EVENT_BUS_URL=$remote_url"
    if [ -n "${AGENT_EVENT_BUS_TOKEN:-}" ]; then
        echo "  export AGENT_EVENT_BUS_TOKEN=<the hub's token>"
    else
        echo "No token was given: the hub refuses clients without one (unless it trusts"
        echo "tailscale serve's identity headers). On the hub's machine, \`agent-event-bus-cli token\`"
        echo "prints it; then run this again with TOKEN=..."
    fi
    [ -n "${DRY_RUN:-}" ] || AGENT_EVENT_BUS_URL=$remote_url "$BINDIR/agent-event-bus-cli" doctor || true
}

uninstall() {
    OS=$(os)
    case $OS in
    linux)
        unit=$(unit_path)
        if [ -f "$unit" ]; then
            run_quietly systemctl --user disable --now "$UNIT"
            run rm -f "$unit"
            run_quietly systemctl --user daemon-reload
        fi
        ;;
    macos)
        plist=$(plist_path)
        if [ -f "$plist" ]; then
            run_quietly launchctl bootout "gui/$(id -u)/$LABEL"
            run rm -f "$plist"
        fi
        ;;
    esac
    if command -v claude >/dev/null 2>&1; then run_quietly claude mcp remove --scope user "$MCP_NAME"; fi
    for bin in $BINS; do
        if [ -e "$BINDIR/$bin" ]; then run rm -f "$BINDIR/$bin"; fi
    done
    echo "Uninstalled. Your data is kept in $DATA_DIR (settings in $ENV_FILE)."
}

restart() {
    OS=$(os)
    case $OS in
    linux) run systemctl --user restart "$UNIT" ;;
    macos) run launchctl kickstart -k "gui/$(id -u)/$LABEL" ;;
    esac
    check
}

logs() {
    OS=$(os)
    case $OS in
    linux) run journalctl --user -u "$UNIT" -n 100 -f ;;
    macos) run tail -n 100 -F "$LOG_FILE" ;;
    esac
}

command=${1:-}
[ $# -eq 0 ] || shift
case $command in
render) render "$@" ;;
install-server) install_server ;;
install-client) install_client "$@" ;;
uninstall) uninstall ;;
restart) restart ;;
logs) logs ;;
*) die "usage: $0 render [linux|macos] | install-server | install-client URL | uninstall | restart | logs" ;;
esac
