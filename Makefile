# make test: create .venv on a fresh machine, install everything the tests need, lint, type-check, test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest docs bench demo dist fuzz clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,docs]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check wacht_auth tests examples benchmarks
	$(BIN)/ruff format --check wacht_auth tests examples benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict wacht_auth

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest docs

# The mkdocs site into site/; --strict turns broken links and pages missing from the nav into
# errors (mkdocs.yml's validation section).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

bench: $(STAMP)
	$(BIN)/python -m benchmarks

demo: $(STAMP)
	$(BIN)/python -m wacht_auth.cli demo

# The sdist and the wheel into dist/ (tests/test_package.py checks what they hold).
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist .

clean:
	rm -rf $(VENV) dist

# make generate: the Backend API's typed code (and docs reference) from its committed table;
# SPEC=<path to Wacht's platform-api.json> derives the table from the description first.
SPEC ?=
.PHONY: generate
generate: $(STAMP)
	$(BIN)/python -m wacht_auth.backend._generate $(if $(SPEC),--spec $(SPEC))

# make e2e: the browser tests (tests/e2e, never collected by make test). Debian's chromium and
# chromium-driver are installed when missing (CI runs as root); Selenium comes from the e2e extra.
.PHONY: e2e
E2E_STAMP := $(VENV)/.e2e-installed

$(E2E_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,e2e]'
	touch $(E2E_STAMP)

e2e: $(E2E_STAMP)
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi
	$(BIN)/pytest -q tests/e2e
