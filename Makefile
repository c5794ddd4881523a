# Seawall: two commands on a fresh machine.
#   make run   - create .venv, install, serve zones/ on 127.0.0.1:5353 (UDP+TCP)
#   make test  - install the test extras and the DNS peers, run every test

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
LISTEN ?= 127.0.0.1:5353
PEERS  := knotd nsd named dig kdig dnsperf unbound promtool faketime etcd etcdctl
APT_PACKAGES := knot nsd bind9 bind9-dnsutils knot-dnsutils dnsperf unbound prometheus faketime etcd-server etcd-client
# Programs tests need besides the DNS peers (tests/cli/test_diff.py and
# tests/backends/test_files.py run git; tests/cli/test_config_cmd.py runs
# systemd-analyze on the shipped unit); `program:package` pairs.
TEST_TOOLS := git:git systemd-analyze:systemd

.PHONY: run test venv install install-test peers bench bench-quick bench-switch conformance docs clean fuzz mutation

$(PY):
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
		echo "installing python3-venv"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

venv: $(PY)

install: $(PY)
	$(PIP) install --quiet -e '.[speed]'

install-test: $(PY)
	$(PIP) install --quiet -e '.[speed,test]'

run: install
	$(VENV)/bin/seawall serve --zones zones --listen $(LISTEN)

# The reference servers and clients the interop tests talk to, and the other
# programs the tests run (Debian packages).
peers:
	@missing=""; packages=""; for tool in $(PEERS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	[ -z "$$missing" ] || packages="$(APT_PACKAGES)"; \
	for pair in $(TEST_TOOLS); do command -v $${pair%%:*} >/dev/null 2>&1 || { missing="$$missing $${pair%%:*}"; packages="$$packages $${pair#*:}"; }; done; \
	if [ -n "$$missing" ]; then \
		echo "installing DNS peers and test tools (missing:$$missing)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$packages >/dev/null; \
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

# Mutation testing (mutmut) of the modules in MUTATE, in a scratch copy of the
# tree (build/mutation), so the working tree is never mutated. Slow; not part
# of `make test`. Add modules with e.g.
#   make mutation MUTATE="seawall/dns/engine.py seawall/failover/guard.py" \
#       MUTATION_TESTS="tests/dns/test_engine.py tests/failover/test_guard.py"
MUTATE ?= seawall/dns/engine.py seawall/failover/guard.py seawall/failover/controller.py \
	seawall/failover/zonestate.py
MUTATION_TESTS ?= tests/dns/test_engine.py tests/dns/test_responder.py tests/dns/test_fuzz_regressions.py \
	tests/dns/test_fastpath.py tests/zones/test_zoneset.py \
	tests/failover/test_guard.py tests/failover/test_guard_edges.py tests/failover/test_controller.py \
	tests/failover/test_controller_edges.py tests/failover/test_states.py
MUTATION_JOBS ?= 2
MUTATION_DIR := build/mutation
mutation: install-test
	$(PIP) install --quiet 'mutmut>=3.8,<4'
	rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR)
	cp -r seawall tests zones bench pyproject.toml $(MUTATION_DIR)/
	{ echo '[mutmut]'; echo 'source_paths = seawall'; \
	  echo 'only_mutate ='; for m in $(MUTATE); do echo "    $$m"; done; \
	  echo 'also_copy ='; echo '    zones'; echo '    bench'; \
	  echo 'pytest_add_cli_args ='; echo '    -m'; echo '    not interop'; \
	  echo 'pytest_add_cli_args_test_selection ='; for t in $(MUTATION_TESTS); do echo "    $$t"; done; \
	} > $(MUTATION_DIR)/setup.cfg
	cd $(MUTATION_DIR) && $(CURDIR)/$(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) >mutmut-run.log 2>&1 || { tail -30 mutmut-run.log; exit 1; }
	cd $(MUTATION_DIR) && $(CURDIR)/$(VENV)/bin/mutmut export-cicd-stats >/dev/null && $(CURDIR)/$(VENV)/bin/python -c \
	  'import json; s = json.load(open("mutants/mutmut-cicd-stats.json")); k = s["killed"] + s["timeout"]; \
	   t = k + s["survived"] + s["no_tests"] + s["suspicious"]; \
	   print("mutation score: %d of %d mutants killed (%.1f%%): %s" % (k, t, 100 * k / max(t, 1), s))'
	cd $(MUTATION_DIR) && $(CURDIR)/$(VENV)/bin/mutmut results
