# drpilot — the two commands a user needs: `make demo` and `make test`.
# Both install what they need (a venv with the pinned AWS emulator under .venv/).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
# checkov pins an older boto3 than moto needs: the Terraform checks get their own venv.
INFRA_VENV := .venv-infra
WITH_SIM := tests/emulator/with-simulator.sh

BENCH_VENV := .venv-bench

.PHONY: test demo page-check scenarios bench bench-s3 bench-copier bench-lag build lint infra-check package fmt venv clean

$(VENV)/.installed: tests/emulator/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/emulator/requirements.txt
	touch $@

$(INFRA_VENV)/.installed: infra/requirements-checks.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-checks.txt
	touch $@

venv: $(VENV)/.installed $(INFRA_VENV)/.installed

# Debug builds only: the end-to-end tests run the function binaries as Lambda would. Every
# target at once (the tests too): a build without the tests resolves other features (the test
# crates' dev-dependencies turn some on) and would compile the AWS SDK crates a second time.
build:
	cargo build --workspace --all-targets

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# Terraform: formatting and security checks (offline; providers cannot be downloaded here,
# so `terraform validate`/`plan` are not run). The code/Terraform consistency is a Rust test.
infra-check: $(INFRA_VENV)/.installed
	$(INFRA_VENV)/bin/terraform fmt -check -recursive infra
	$(INFRA_VENV)/bin/checkov -d infra --framework terraform --skip-download --quiet --compact

# The venvs download while cargo compiles (-j2, cargo first: it is the long one); clippy runs
# inside run-tests.sh, at the lowest priority, while the tests mostly wait on the simulator's
# scaled clock.
test:
	cargo fmt --all -- --check
	$(MAKE) --no-print-directory -j2 build $(VENV)/.installed $(INFRA_VENV)/.installed
	$(MAKE) --no-print-directory infra-check
	PYTHONPATH=tests/emulator $(VENV)/bin/python -m unittest discover -s tests/emulator -p 'test_*.py'
	tests/emulator/run-tests.sh

demo: $(VENV)/.installed build
	$(WITH_SIM) target/debug/drpilot-demo

# Only the scenario suite (also part of `make test`): one line per night, with its measured
# RTO components and RPO. STORY=1 prints each night's story; NAME=... runs the matching ones.
scenarios: $(VENV)/.installed build
	$(WITH_SIM) cargo test --quiet -p drpilot-tests --test scenarios -- $(NAME)

# drpilot's S3 backup against `aws s3 sync` (awscli in its own venv) on the same emulator and
# the same buckets (2,000 and 20,000 objects; BENCH_OBJECTS=N,M): wall time, peak memory and S3
# requests at the wire, first run and reruns. Release build.
$(BENCH_VENV)/.installed: tests/bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/bench/requirements.txt
	touch $@

bench: bench-s3 bench-copier bench-lag

bench-s3: $(VENV)/.installed $(BENCH_VENV)/.installed
	cargo build --release -p s3-backup
	$(WITH_SIM) $(VENV)/bin/python tests/bench/s3_backup_vs_sync.py

# The snapshot copier against a plain boto3 script of the same job (tests/bench/copier_peer.py),
# at 1,000 DB instances (BENCH_DATABASES=N): wall time, peak memory, AWS calls at the emulator.
# moto counts every snapshot in a region against a quota of 1,000; AWS's quota (100 by default,
# adjustable) counts manual snapshots only. 1,000 databases' automated snapshots must not fill it.
bench-copier: $(VENV)/.installed
	cargo build --release -p snapshot-copier
	MOTO_RDS_SNAPSHOT_LIMIT=100000 $(WITH_SIM) $(VENV)/bin/python tests/bench/copier_vs_boto3.py

# The lag checker against a plain boto3 script measuring one resource at a time
# (tests/bench/lag_peer.py), at 500 read replicas (BENCH_RESOURCES=N): wall time, peak memory,
# AWS calls and GetMetricData calls at the emulator.
bench-lag: $(VENV)/.installed
	cargo build --release -p lag-checker
	$(WITH_SIM) $(VENV)/bin/python tests/bench/lag_vs_boto3.py

# The status pages `make demo` writes, in a real headless browser (Chromium, where one is
# installed; not part of `make test`): screenshots at a phone's and a laptop's width under
# target/page-check/, and the DOM the browser built checked against the file.
page-check: demo
	$(PYTHON) tests/page/check.py

# Lambda zips (bootstrap, provided.al2023) in dist/, checked against the runtime's glibc.
package:
	$(PYTHON) infra/package.py

fmt:
	cargo fmt --all
	$(INFRA_VENV)/bin/terraform fmt -recursive infra

clean:
	rm -rf $(VENV) $(INFRA_VENV) $(BENCH_VENV) target dist
