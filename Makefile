# Two entry points: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit timing fuzz bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e . --group dev
	@# pyscard compiles against libpcsclite (Debian: swig libpcsclite-dev). Without it the
	@# PC/SC tests skip, unless MACNSS_REQUIRE_SERVICES=1 turns the skip into a failure.
	-$(PY) -m pip install -q "pyscard>=2.0" || echo "note: pyscard not installed; PC/SC tests will skip"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/macnss-auth demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Wall-clock assertions (marker `timing`) run apart, after the rest: a loaded machine
# makes them slow, not wrong, and must not hide a real failure among the unit tests.
unit: $(STAMP)
	$(PY) -m pytest -q -m "not timing"

timing: $(STAMP)
	$(PY) -m pytest -q -m timing

test: lint typecheck unit timing

# Long fuzzing: HYPOTHESIS_PROFILE=long runs every parser fuzz test with 200,000 examples.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(PY) -m pytest -q -m slow

# The documentation site (strict: a broken link or a page missing from the nav fails).
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

bench: $(STAMP)
	for f in bench/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis site
