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
