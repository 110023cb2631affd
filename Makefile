# Timbre: `make run` (embedded platform), `make test` (full suite against real services) and
# `make test-unit` (the framework-free speech library alone: no database, Redis, S3 or Django).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PYTHONPATH := $(CURDIR):$(CURDIR)/platform
STAMP := $(VENV)/.installed-$(shell cat requirements.lock | sha1sum | cut -c1-12)
NODE_STAMP := frontend/node_modules/.installed-$(shell cat frontend/package-lock.json | sha1sum | cut -c1-12)
SYSTEM_PACKAGES := espeak-ng sox libsox-fmt-all ffmpeg libsndfile1 chromium curl jq nodejs

.PHONY: run test test-unit lint format bench bench-control bench-synthesis bench-overhead bench-load bench-watermark system-deps services deps lock vendor clean

deps: system-deps $(STAMP) $(NODE_STAMP)

$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $@

# The console's npm packages: axe-core for the browser tests, and the sources of the runtime
# assets vendored into frontend/static/frontend/vendor (refreshed by `make vendor`).
$(NODE_STAMP): frontend/package-lock.json
	command -v npm >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get install -y -qq npm >/dev/null; }
	npm ci --prefix frontend --no-audit --no-fund --loglevel=error
	rm -f frontend/node_modules/.installed-*
	touch $@

vendor: $(NODE_STAMP)
	cp frontend/node_modules/htmx.org/dist/htmx.min.js frontend/static/frontend/vendor/htmx-2.0.8.min.js
	cp frontend/node_modules/chart.js/dist/chart.umd.min.js frontend/static/frontend/vendor/chart-4.6.1.umd.min.js
	for w in 400 500 600 700; do cp frontend/node_modules/@fontsource/inter/files/inter-latin-$$w-normal.woff2 frontend/static/frontend/vendor/fonts/; done

# Debian packages the speech stack and browser tests need (installed only when missing).
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# PostgreSQL and Redis run on localhost on these machines; start them when stopped.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && exit 0; sleep 1; done; echo "services did not start"; exit 1

run: deps
	$(PY) manage.py run_embedded --port $(PORT)

test: deps services
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# Without the project's pytest plugins (tests.testenv, tests.fixtures) and pytest-django, so
# nothing here needs PostgreSQL, Redis, S3 or settings. `make test` runs these tests too.
test-unit: deps
	$(PY) -m pytest platform/speech/tests -p no:django -o addopts="" -W ignore::pytest.PytestConfigWarning -q $(PYTEST_ARGS)

lint: deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: deps
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: bench-control bench-synthesis bench-overhead bench-load bench-watermark

bench-control: deps services
	$(PY) bench/control_plane.py

bench-synthesis: deps services
	$(PY) bench/synthesis_api.py
	$(PY) bench/prompt_cache.py

# A short sync request's overhead over the engine alone, and where it goes (timing spans).
bench-overhead: deps services
	flock /tmp/timbre-bench.lock $(PY) bench/overhead.py

# Throughput and latency under locust against gunicorn with several processes.
bench-load: deps services
	flock /tmp/timbre-bench.lock $(PY) bench/load/run.py

# Issue 11's attack-suite matrix (docs/watermark.md): every attack x 1, 1.5, 2, 3, 5, 10 s, 1,000
# unmarked speech + 1,000 music clips. flock keeps concurrent benchmarks from sharing the CPUs.
# BEFORE=old.json puts earlier figures beside the new ones.
WM_OUT ?= var/wm-bench
bench-watermark: deps
	mkdir -p $(dir $(WM_OUT))
	flock /tmp/timbre-bench.lock $(PY) -m bench.watermark.run --builtin --matrix --n 24 \
		--unmarked 1000 --jobs 2 --json $(WM_OUT).json --md $(WM_OUT).md \
		$(if $(BEFORE),--before $(BEFORE))

lock:
	$(PY) -m pip freeze | grep -v '^torch==' | (echo "torch==2.13.0"; cat) > requirements.lock

clean:
	rm -rf var .pytest_cache
