# CrowdFab: `make demo` runs the fleet, `make test` runs every test. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# OctoPrint is installed beside the project: the plugin runs inside it and the
# benchmarks compare against its G-code analysis.
OCTOPRINT_SPEC ?= octoprint>=1.10,<2

.PHONY: all demo test lint typecheck unit bench soak cluster cluster-bench venv system-deps clean

all: test

$(STAMP): setup.py
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install python3 (3.9 or newer)"; exit 2; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
	  echo "python3-venv is missing: installing it"; apt-get update -qq && apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' '$(OCTOPRINT_SPEC)'
	@touch $@

venv: $(STAMP)

# Debian packages the services (and the dashboard's browser tests, and HAProxy for the two-process
# cluster's test) need; installed only when missing.
system-deps:
	@missing=""; \
	for tool in mosquitto:mosquitto mosquitto_sub:mosquitto-clients mosquitto_passwd:mosquitto chromium:chromium haproxy:haproxy; do \
	  command -v $${tool%%:*} >/dev/null || [ -x /usr/sbin/$${tool%%:*} ] || missing="$$missing $${tool##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check fleet octoprint_crowdfab tests bench
	$(VENV)/bin/ruff format --check fleet octoprint_crowdfab tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Two workers, a test file each at a time: most slow tests wait on processes (OctoPrint, brokers,
# printers), so the two cores stay busy. `make unit PYTEST_WORKERS=0` runs them in one process.
PYTEST_WORKERS ?= 2
unit: $(STAMP) system-deps
	$(PY) -m pytest -q --durations=25 $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile) tests

test: lint typecheck unit

demo: $(STAMP) system-deps
	$(PY) -m fleet.demo

# Printrun's printcore is the serial bench's reference host; it needs only pyserial, not its GUI.
bench: $(STAMP) system-deps
	$(PY) -c 'import printrun' 2>/dev/null || $(PY) -m pip install -q --no-deps printrun
	$(PY) bench/gcode_analysis.py
	$(PY) bench/scheduler.py
	$(PY) bench/serial_stream.py
	$(PY) bench/dashboard.py
	$(PY) bench/fleet_load.py

# Two fleet processes behind HAProxy on one PostgreSQL database and one Mosquitto, on this machine, until
# Ctrl-C (docs/operations.md); PostgreSQL must be running (127.0.0.1:5432, or CROWDFAB_TEST_PG_ADMIN_URL).
cluster: $(STAMP) system-deps
	$(PY) bench/cluster.py --up

# The same under load, 500 printers: a fleet process killed, then a rolling restart; prints what it cost.
cluster-bench: $(STAMP) system-deps
	$(PY) bench/cluster.py

# The 5-minute network cut, with a headless printer and a real OctoPrint (about 6 minutes).
soak: $(STAMP) system-deps
	$(PY) bench/soak_network_cut.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
