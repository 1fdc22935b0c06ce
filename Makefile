# maillink: the two commands are `make run` and `make test`; the rest are their parts.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: run stop test test-unit test-integration test-e2e install infra-up infra-down infra-status \
        schemas bench bench-report bench-ingest bench-latency bench-idle bench-imap-reader bench-tracker bench-bcc bench-matcher bench-outbound crash-outbound fuzz chaos clean

run: install            ## install, start infrastructure + all five services, seed the demo, show it working
	bash scripts/run.sh

stop:                   ## stop services and infrastructure left running
	bash scripts/stop.sh

test:                   ## install, start what the tests need, run unit + integration + e2e tests
	bash scripts/test.sh tests

test-unit: install
	$(PY) -m pytest tests/unit -p no:cacheprovider

test-integration:
	bash scripts/test.sh tests/integration

test-e2e:
	bash scripts/test.sh tests/e2e

install:                ## system packages, Python environment, Kafka jars, FerretDB binary (cached)
	bash scripts/bootstrap.sh

infra-up: install
	bash deploy/local/infra.sh start

infra-down:
	bash deploy/local/infra.sh stop

infra-status:
	bash deploy/local/infra.sh status

schemas: install        ## regenerate JSON Schema + AsyncAPI from the pydantic contracts
	$(PY) -m maillink_schemas.export schemas/generated

BENCHES := bench-ingest bench-latency bench-idle bench-imap-reader bench-tracker bench-bcc bench-matcher bench-outbound
bench: install          ## every benchmark (one after another; a failure does not stop the rest), then one table
	@failed=""; for b in $(BENCHES); do $(MAKE) --no-print-directory $$b || failed="$$failed $$b"; done; \
	$(PY) -m maillink_devtools.bench_report; \
	if [ -n "$$failed" ]; then echo "benchmarks that failed:$$failed" >&2; exit 1; fi

bench-report:           ## the table of every result already in .run/bench/ -> summary.md + summary.json
	$(PY) -m maillink_devtools.bench_report

bench-ingest: install   ## initial-sync throughput vs mbsync and raw imaplib (20,000 messages)
	bash scripts/bench-ingest.sh

bench-latency: install  ## new-mail latency: 200 APPENDs 250 ms apart to one idle account, APPEND -> event on Kafka
	bash deploy/local/infra.sh start
	$(PY) -m maillink_devtools.bench_latency

bench-idle: install     ## 1,000 idle accounts on one ingest process (a private Dovecot with raised limits): RSS, CPU, new mail
	bash deploy/local/infra.sh start
	$(PY) -m maillink_devtools.bench_idle

bench-bcc: install      ## Smart Bcc gateway (sender checks on) vs a bare aiosmtpd sink, 2,000 messages
	bash deploy/local/infra.sh start
	$(PY) -m maillink_devtools.bench_bcc

.PHONY: bench-imap-reader
bench-imap-reader: install   ## aioimaplib's response reader alone, stock 2.0.3 vs ours (no servers needed)
	$(PY) -m maillink_devtools.bench_imap_reader
bench-tracker: install  ## the open pixel under wrk vs nginx serving the same GIF; every counted request = one event
	bash deploy/local/infra.sh start
	$(PY) -m maillink_devtools.bench_tracker

bench-matcher: install  ## matcher throughput vs raw Kafka and raw bulk insert; query p99; re-link time; SQLite vs PostgreSQL
	bash scripts/bench-matcher.sh $(BENCH_ARGS)

bench-outbound: install ## 5,000 templated, tracked sends through outbound vs a raw aiosmtplib loop (local SMTP sink)
	bash deploy/local/infra.sh start
	$(PY) -m maillink_devtools.bench_outbound --messages 5000

crash-outbound: install ## the full crash test: 500 requests, 50 SIGKILLs, both kinds of server (make test runs a short one)
	bash deploy/local/infra.sh start
	OUTBOUND_CRASH_MESSAGES=500 OUTBOUND_CRASH_KILLS=50 $(PY) -m pytest tests/e2e/test_outbound_crash.py -p no:cacheprovider -q -s

# The long fuzz run: the same suites `make test` runs briefly, with FUZZ_CASES inputs each (MIME,
# IMAP responses, SMTP sessions), API_FUZZ_CASES per operation and mode for schemathesis, and the
# malformed corpus end to end. Each suite prints `<suite>: cases=<n> failures=<n>`.
FUZZ_CASES ?= 3000
API_FUZZ_CASES ?= 50
fuzz: install           ## long fuzzing: MIME, IMAP responses, SMTP input, schemathesis on every API, the corpus
	bash deploy/local/infra.sh start
	FUZZ_CASES=$(FUZZ_CASES) API_FUZZ_CASES=$(API_FUZZ_CASES) $(PY) -m pytest -p no:cacheprovider -q -s \
		tests/unit/test_fuzz_mime.py tests/unit/test_corpus_parse.py tests/unit/test_fuzz_imap.py \
		tests/integration/test_fuzz_smtp.py tests/e2e/test_schemathesis.py tests/e2e/test_corpus.py

chaos: install          ## faults (SIGKILLs, broker/store restarts, kicks, UIDVALIDITY, password, read-only blobs) while 20,000 messages flow; verdict. Private servers (.run-chaos/, other ports)
	bash scripts/chaos.sh

clean: stop
	rm -rf .run
