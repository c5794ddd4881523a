# Seawall: two commands on a fresh machine.
#   make run   - create .venv, install, serve zones/ on 127.0.0.1:5353 (UDP+TCP)
#   make test  - install the test extras and the DNS peers, run every test

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
LISTEN ?= 127.0.0.1:5353
PEERS  := knotd nsd named dig kdig dnsperf unbound
APT_PACKAGES := knot nsd bind9 bind9-dnsutils knot-dnsutils dnsperf unbound

.PHONY: run test venv install install-test peers bench bench-quick bench-switch conformance docs clean fuzz

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

venv: $(PY)

install: $(PY)
	$(PIP) install --quiet -e '.[speed]'

install-test: $(PY)
	$(PIP) install --quiet -e '.[speed,test]'

run: install
	$(VENV)/bin/seawall serve --zones zones --listen $(LISTEN)

# The reference servers and clients the interop tests talk to (Debian packages).
peers:
	@missing=""; for tool in $(PEERS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing DNS peers (missing:$$missing)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

test: install-test peers
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Seawall vs NSD vs Knot, side by side (bench/README.md): ~4 min; quick: ~1.5 min.
bench: install-test peers
	$(PY) bench/compare.py

bench-quick: install-test peers
	$(PY) bench/compare.py --quick

bench-switch: install-test peers
	$(PY) bench/switch.py

conformance: install-test peers
	$(PY) -m pytest -q tests/test_conformance.py

# docs/configuration.md is generated from seawall/config.py (a test checks it).
docs: install
	$(VENV)/bin/seawall config --reference > docs/configuration.md

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# Coverage-guided fuzzing of the answer path, bounded in time (atheris).
FUZZ_SECONDS ?= 60
fuzz: install-test
	$(PIP) install --quiet atheris
	mkdir -p .fuzz-corpus
	$(PY) bench/fuzz/fuzz_responder.py -max_total_time=$(FUZZ_SECONDS) -timeout=5 .fuzz-corpus bench/fuzz/corpus
