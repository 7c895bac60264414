# The two commands of the README's quick start: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test setup browser lint clean
.PHONY: mypy mypy-baseline test-latest constraints

# The demo's ministry API (a federated source, docs/federation.md) runs beside the hub and is
# stopped with it, however the hub ends.
run: setup
	@echo 'make: nrhub is in .venv/bin: call .venv/bin/nrhub, or run . .venv/bin/activate first (docs/commands.md)'
	$(BIN)/nrhub demo load
	$(BIN)/python -m nrhub.demo.tourism_api & api=$$!; \
	trap 'kill $$api 2>/dev/null' EXIT INT TERM; \
	$(BIN)/nrhub --config hub/demo/sources.toml serve

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/python .ci/mypy_baseline.py
	$(BIN)/pytest -q

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
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
	rm -rf $(LATEST)

# Types (issue 17). mypy must report nothing that mypy-baseline.txt does not list, and every line there
# must still occur: the baseline only shrinks. The modules of pyproject.toml's strict override (every
# new module) may have no line there at all.
mypy: setup
	$(BIN)/python .ci/mypy_baseline.py

# Rewrites mypy-baseline.txt from what mypy reports now (after moving modules, say). Review the diff:
# a line added is an error accepted.
mypy-baseline: setup
	$(BIN)/python .ci/mypy_baseline.py --update

# The newest releases pyproject.toml allows, without constraints.txt, in a venv of their own: what an
# upgrade would break, before it is made (schema/engine_internals.py's tests name the private parts of
# strawberry and graphql-core that changed). PYTEST_ARGS narrows the run, e.g. PYTEST_ARGS=tests/schema.
LATEST := .venv-latest
PYTEST_ARGS ?=
test-latest: node_modules/.installed browser
	test -x $(LATEST)/bin/python || $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install --quiet --upgrade pip
	$(LATEST)/bin/pip install --quiet --upgrade --upgrade-strategy eager -e '.[test]'
	$(LATEST)/bin/pip freeze --exclude-editable | grep -i -E '^(strawberry-graphql|graphql-core)=='
	$(LATEST)/bin/ruff check .
	$(LATEST)/bin/pytest -q $(PYTEST_ARGS)

# constraints.txt from what .venv holds now, after a deliberate upgrade there (its header kept).
constraints: setup
	{ grep '^#' constraints.txt; $(BIN)/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
