# The two commands of the README's quick start: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test setup browser lint clean

# The demo's ministry API (a federated source, README "Federation") runs beside the hub and is
# stopped with it, however the hub ends.
run: setup
	$(BIN)/nrhub demo load
	$(BIN)/python -m hub.demo.tourism_api & api=$$!; \
	trap 'kill $$api 2>/dev/null' EXIT INT TERM; \
	$(BIN)/nrhub --config hub/demo/sources.toml serve

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/pytest -q

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# GraphiQL's JavaScript and CSS come from npm at the versions pinned in package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The browser tests (tests/e2e) drive Debian's chromium. Installed here when it is missing and we
# are root; otherwise, or if apt-get fails (no network, another distribution), `make test` goes on
# and those tests are skipped with the reason shown by pytest -ra.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			(apt-get update && apt-get install -y --no-install-recommends chromium) \
			|| echo "make: could not install chromium; the browser tests will be skipped"; \
		else \
			echo "make: chromium is missing (as root: apt-get install chromium); the browser tests will be skipped"; \
		fi; \
	}

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) node_modules .hub-data
