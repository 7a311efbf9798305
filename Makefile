# PrefHub: `make run` serves the app on SQLite with a demo project; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# sqlite (default) or postgresql: the database the test suite runs against.
DB ?= sqlite

.PHONY: install run test test-sqlite test-postgres lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/prefhub db upgrade
	$(BIN)/prefhub seed-demo
	$(BIN)/prefhub serve --host $(HOST) --port $(PORT) --no-migrate

test: install
	PREFHUB_TEST_DATABASE=$(DB) $(BIN)/pytest -q

test-sqlite:
	$(MAKE) test DB=sqlite

test-postgres:
	$(MAKE) test DB=postgresql

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m benchmarks.run_all --json benchmarks/results.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Extract the English source strings into the template catalogue, then merge it into the Chinese catalogue:
# existing translations are kept, new strings arrive untranslated (never guessed as fuzzy).
LOCALE_DIR := app/locale
.PHONY: messages
messages: install
	$(BIN)/pybabel extract --mapping-file=babel.cfg --output-file=$(LOCALE_DIR)/messages.pot \
		--project=PrefHub --version=0.1.0 --copyright-holder="PrefHub contributors" \
		--add-comments=Translators: --no-wrap .
	$(BIN)/pybabel update --input-file=$(LOCALE_DIR)/messages.pot --output-dir=$(LOCALE_DIR) --locale=zh \
		--init-missing --no-fuzzy-matching --no-wrap
