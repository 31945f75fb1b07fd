# agent-event-bus — build, run, test, install.
# `make run` starts the hub on 127.0.0.1:8080; `make test` runs every test.

CARGO ?= cargo
PREFIX ?= $(HOME)/.local
BINDIR ?= $(PREFIX)/bin
BINS := agent-event-bus agent-event-bus-proxy agent-event-bus-cli
CLAUDE ?= claude

.PHONY: all build release run test test-clients fuzz check fmt clippy doc lines bench install register-proxy install-hooks import clean

all: build

build:
	$(CARGO) build --workspace --bins

release:
	$(CARGO) build --workspace --bins --release

## Start the hub in the foreground (127.0.0.1:8080, data in the default place).
run:
	$(CARGO) run --release --bin agent-event-bus

## Build the binaries, then run every unit and end-to-end test.
test:
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast

## The real MCP clients, pinned, against the built hub and proxy, offline:
## Claude Code, Gemini CLI and Codex driven by a stand-in of their model API
## (once non-interactively, and interactively in tmux: screens, wakes,
## receipts, `setup`), and the TypeScript SDK. Installs them into
## .cache/clients with npm first; needs tmux. One client at a time:
## `claude mcp list` must come and go before the proxy registers (a second),
## which a loaded machine could otherwise stretch, and the wake latencies it
## prints are only meaningful on a quiet machine.
CLIENTS := @anthropic-ai/claude-code@2.1.332 @google/gemini-cli@0.61.0 \
	@openai/codex@0.171.0 @modelcontextprotocol/sdk@1.32.2
test-clients:
	sh tests/clients/install.sh $(CLIENTS)
	$(CARGO) build --workspace --bins
	$(CARGO) test -p agent-event-bus-tests --features clients --test clients -- --test-threads=1 --nocapture

## Fuzz the hub's JSON-RPC parsing and dispatch, calls with and without
## session keys, its argument coercion, its access check on random headers,
## its bounded pages and lists, and the escaping of client text (property
## tests on random inputs) for FUZZ_SECONDS per target, eight targets: about
## 6 minutes. Prints how many inputs each ran. `make test` runs the same
## properties on 64 inputs each.
FUZZ_SECONDS ?= 45
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test -p agent-event-bus --lib fuzz -- --nocapture --test-threads 1

## The gates a change must pass (CONTRIBUTING.md): format, lints, API docs,
## and no .rs file over 500 lines.
check: fmt clippy doc lines

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --features agent-event-bus-tests/clients -- -D warnings

## API docs with every warning denied (broken intra-doc links included).
doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace

lines:
	sh tests/lines.sh

## Print performance figures (release build; a benchmark, not a test).
## `make bench SECTION=fleet` (or webhooks, proxy) runs one section.
bench:
	$(CARGO) build --workspace --bins --release
	$(CARGO) run --release -p agent-event-bus-tests --bin bench -- $(SECTION)

## Bring the Python original's database into the hub's store (stop both hubs first):
## make import [FROM=path/to/data.db] [DB=path/to/data.redb] [FORCE=1]
FROM ?= $(HOME)/.claude/contrib/agent-event-bus/data.db
import: release
	target/release/agent-event-bus import "$(FROM)" $(if $(DB),--db "$(DB)") $(if $(FORCE),--force)

install: release
	mkdir -p $(BINDIR)
	for b in $(BINS); do install -m 0755 target/release/$$b $(BINDIR)/$$b; done
	@echo "Installed $(BINS) into $(BINDIR)"
	@$(MAKE) --no-print-directory register-proxy

## Register the proxy with Claude Code at user scope when `claude` is on
## PATH. Idempotent: an existing entry (say, one pointed at a remote hub by
## install-client) is kept as it is.
register-proxy:
	@if ! command -v $(CLAUDE) >/dev/null 2>&1; then \
	  echo "$(CLAUDE) is not on PATH; register the proxy with your MCP client (see README):"; \
	  echo "  claude mcp add --scope user agent-event-bus -- $(BINDIR)/agent-event-bus-proxy"; \
	elif $(CLAUDE) mcp get agent-event-bus >/dev/null 2>&1; then \
	  echo "Claude Code already has the agent-event-bus MCP server; kept as it is"; \
	  echo "  (to reset it: claude mcp remove --scope user agent-event-bus && make register-proxy)"; \
	else \
	  $(CLAUDE) mcp add --scope user agent-event-bus -- $(BINDIR)/agent-event-bus-proxy && \
	  echo "Registered agent-event-bus with Claude Code (user scope)"; \
	fi

## Add the wake-up hook to Claude Code (~/.claude/settings.json): a Stop hook
## with asyncRewake running examples/hooks/stop-wait.sh. Idempotent.
install-hooks: install
	$(BINDIR)/agent-event-bus-cli install-hook --command "$(CURDIR)/examples/hooks/stop-wait.sh"

clean:
	$(CARGO) clean

# ---- The hub as a user service (deploy/service.sh does the work; every target is idempotent) ----
SERVICE = BINDIR="$(BINDIR)" sh deploy/service.sh

.PHONY: install-server install-client require-remote-url uninstall restart logs

## Install the binaries, run the hub as a user service (systemd on Linux, a
## LaunchAgent on macOS) and register the proxy with Claude Code.
install-server: install
	$(SERVICE) install-server

## Install the binaries and point Claude Code's proxy at a remote hub:
## make install-client REMOTE_URL=https://HOST/agent-event-bus [TOKEN=...]
## (TOKEN defaults to $$AGENT_EVENT_BUS_TOKEN; the recipe is not echoed, so it stays off the screen.)
install-client: require-remote-url install
	@$(if $(TOKEN),AGENT_EVENT_BUS_TOKEN="$(TOKEN)") $(SERVICE) install-client "$(REMOTE_URL)"

require-remote-url:
	@test -n "$(REMOTE_URL)" || { echo "usage: make install-client REMOTE_URL=https://HOST/agent-event-bus [TOKEN=...]" >&2; exit 2; }

## Remove the service, the proxy's Claude Code entry and the binaries; keeps the data.
uninstall:
	$(SERVICE) uninstall

restart:
	$(SERVICE) restart

logs:
	$(SERVICE) logs
