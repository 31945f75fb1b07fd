# agent-event-bus — build, run, test, install.
# `make run` starts the hub on 127.0.0.1:8080; `make test` runs every test.

CARGO ?= cargo
PREFIX ?= $(HOME)/.local
BINDIR ?= $(PREFIX)/bin
BINS := agent-event-bus agent-event-bus-proxy agent-event-bus-cli

.PHONY: all build release run test check fmt clippy bench install clean

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

check: fmt clippy

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Print performance figures (release build; a benchmark, not a test).
bench:
	$(CARGO) build --workspace --bins --release
	$(CARGO) run --release -p agent-event-bus-tests --bin bench

install: release
	mkdir -p $(BINDIR)
	for b in $(BINS); do install -m 0755 target/release/$$b $(BINDIR)/$$b; done
	@echo "Installed $(BINS) into $(BINDIR)"

clean:
	$(CARGO) clean
