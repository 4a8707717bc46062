# drpilot — the two commands a user needs: `make demo` and `make test`.
# Both install what they need (a venv with the pinned AWS emulator under .venv/).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
WITH_MOTO := tests/emulator/with-moto.sh

.PHONY: test demo build lint fmt venv clean

$(VENV)/.installed: tests/emulator/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/emulator/requirements.txt
	touch $@

venv: $(VENV)/.installed

# Debug builds only: the end-to-end tests run the function binaries as Lambda would.
build:
	cargo build --workspace --bins

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test: venv lint build
	$(WITH_MOTO) cargo test --workspace

demo: venv build
	$(WITH_MOTO) cargo run --quiet -p drpilot-tests --bin drpilot-demo

fmt:
	cargo fmt --all

clean:
	rm -rf $(VENV) target
