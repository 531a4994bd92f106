# Two entry points: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: catalogs demo test lint typecheck unit timing pythons fuzz bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[nfc]' --group dev
	@# pyscard compiles against libpcsclite (Debian: swig libpcsclite-dev). Without it the
	@# PC/SC tests skip, unless MACNSS_REQUIRE_SERVICES=1 turns the skip into a failure.
	-$(PY) -m pip install -q -e '.[nfc,pcsc]' || echo "note: pyscard not installed; PC/SC tests will skip"
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

# The suite on the oldest and newest Python the package claims (requires-python >= 3.10, the
# classifiers up to 3.12), each in a venv of its own, with the interpreters pyenv keeps on this
# kind of machine. Lint and types are checked once, by `make test`.
PYENV_ROOT ?= $(HOME)/.pyenv
CLAIMED_PYTHONS ?= 3.10 3.12
PYTEST_ARGS ?=

pythons:
	@for v in $(CLAIMED_PYTHONS); do \
	  py=$$(ls -d $(PYENV_ROOT)/versions/$$v.*/bin/python$$v 2>/dev/null | sort -V | tail -1); \
	  if [ -z "$$py" ]; then echo "note: python$$v is not installed under $(PYENV_ROOT); skipped" >&2; continue; fi; \
	  echo "== the suite on $$($$py -V)"; \
	  $$py -m venv .venv-$$v || exit 1; \
	  .venv-$$v/bin/python -m pip install -q --upgrade pip || exit 1; \
	  .venv-$$v/bin/python -m pip install -q -e '.[nfc]' --group dev || exit 1; \
	  .venv-$$v/bin/python -m pip install -q -e '.[nfc,pcsc]' || echo "note: pyscard not installed"; \
	  .venv-$$v/bin/python -m pytest -q -m "not timing" $(PYTEST_ARGS) || exit 1; \
	done

# The gettext catalogs (docs/languages.md): the template from the code's N_/NP_ markers, each
# language's .po brought up to date, then compiled to the .mo files the package ships (the
# tests check that every catalog is complete and that each .mo is its compiled .po).
LOCALE := src/macnss_auth/locale
catalogs: $(STAMP)
	$(VENV)/bin/pybabel extract --no-default-keywords -k N_:1c,2 -k NP_:1c,2,3 \
	  --add-comments=TRANSLATORS: --no-location --sort-output --project=macnss_auth \
	  -o $(LOCALE)/macnss_auth.pot src/macnss_auth
	$(VENV)/bin/pybabel update --no-fuzzy-matching --ignore-obsolete -D macnss_auth \
	  -i $(LOCALE)/macnss_auth.pot -d $(LOCALE)
	$(VENV)/bin/pybabel compile --statistics -D macnss_auth -d $(LOCALE)

# Long fuzzing: HYPOTHESIS_PROFILE=long runs every parser fuzz test with 200,000 examples.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(PY) -m pytest -q -m slow

# The documentation site (strict: a broken link or a page missing from the nav fails).
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

# Every bench prints ratios to a baseline measured in the same run and exits 1 when
# a stated floor is missed; all run (short defaults), then the target fails if any did.
bench: $(STAMP)
	@failed=""; for f in bench/*.py; do \
		[ "$$(basename $$f)" = __init__.py ] && continue; \
		echo "== $$f"; PYTHONPATH=src $(PY) $$f || failed="$$failed $$f"; \
	done; if [ -n "$$failed" ]; then echo "floors missed in:$$failed"; exit 1; fi

clean:
	rm -rf $(VENV) .venv-3.* .mypy_cache .ruff_cache .pytest_cache .hypothesis site
