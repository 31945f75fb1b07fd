"""A stand-in interactive agent client for the terminal wake tests.

Runs in a terminal pane like a coding agent's TUI: starts the MCP server
given as its arguments as a child over stdio, introduces itself
(CLIENT_NAME), then shows a prompt line `> `, echoes what is typed (the
terminal's own line editing), and runs a "turn" for each submitted line:
a busy line `Working (esc to interrupt)`, the turn hooks (HOOK_CLI
`wake-state busy|idle`, as a client's hooks would), one tool call through
the server (as a model reading its messages), the line appended to
SUBMITTED, then the busy line is cleared and the prompt shown again.

Environment:
  CLIENT_NAME    clientInfo.name sent in initialize (default "standin")
  SUBMITTED      file every submitted line is appended to
  SERVER_LOG     file the server's stderr goes to
  SERVER_STRIP   comma-separated variables removed from the server's environment
  SERVER_ENV     NAME=value pairs added to it, separated by |
  HOOK_CLI       the agent-event-bus CLI, run as the turn hooks (optional)
  TURN_SECONDS   how long a turn shows its busy line (default 1)
"""

import json
import os
import subprocess
import sys
import threading
import time

env = dict(os.environ)
for name in filter(None, os.environ.get("SERVER_STRIP", "").split(",")):
    env.pop(name, None)
for pair in filter(None, os.environ.get("SERVER_ENV", "").split("|")):
    name, _, value = pair.partition("=")
    env[name] = value
log = open(os.environ.get("SERVER_LOG", os.devnull), "ab")
server = subprocess.Popen(
    sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env
)

replies = {}
arrived = threading.Condition()


def read_stdout():
    for line in server.stdout:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if "id" in message and "method" not in message:
            with arrived:
                replies[message["id"]] = message
                arrived.notify_all()


threading.Thread(target=read_stdout, daemon=True).start()
next_id = [0]


def request(method, params):
    next_id[0] += 1
    rid = next_id[0]
    line = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
    server.stdin.write((line + "\n").encode())
    server.stdin.flush()
    with arrived:
        arrived.wait_for(lambda: rid in replies, timeout=30)
        return replies.pop(rid, None)


def notify(method):
    server.stdin.write((json.dumps({"jsonrpc": "2.0", "method": method}) + "\n").encode())
    server.stdin.flush()


request(
    "initialize",
    {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": os.environ.get("CLIENT_NAME", "standin"), "version": "1"},
    },
)
notify("notifications/initialized")


def hook(state):
    cli = os.environ.get("HOOK_CLI")
    if cli:
        subprocess.run([cli, "wake-state", state], stdin=subprocess.DEVNULL)


turn = 0
while True:
    try:
        line = input("> ")
    except EOFError:
        break
    turn += 1
    print("Working (esc to interrupt)", flush=True)
    hook("busy")
    request("tools/call", {"name": "list_sessions", "arguments": {}})
    with open(os.environ["SUBMITTED"], "a") as out:
        out.write(line + "\n")
    time.sleep(float(os.environ.get("TURN_SECONDS", "1")))
    hook("idle")
    # The busy line goes away when the turn ends.
    print("\x1b[1A\x1b[2K" + "turn %d done" % turn, flush=True)
