# The README's two commands are `make demo` and `make test`; both do all set-up first.
SHELL := /bin/bash
export RASA_TELEMETRY_ENABLED := false
export PTB_TIMEDELTA := 1
PY := .venv/bin/python
FINBOT := $(PY) -m bot

.PHONY: setup venvs model demo test bench lint migration clean

venvs:
	@python3 scripts/bootstrap.py

model: venvs
	@$(FINBOT) nlu train

setup: model
	@$(FINBOT) db upgrade

demo: setup
	@$(FINBOT) demo

test: setup
	@mkdir -p var/reports
	@$(PY) -m pytest -q -p no:randomly --timeout=600 $(PYTEST_ARGS)

bench: setup
	@$(PY) -m bench

lint:
	@$(PY) -m ruff check bot backend_client sandbox tests bench

migration: venvs
	@rm -f var/migration-base.sqlite
	@$(PY) -c "from bot.store.migrate import upgrade, autogenerate; u='sqlite+aiosqlite:///var/migration-base.sqlite'; upgrade(u); autogenerate(u, '$(or $(MSG),schema)')"
	@rm -f var/migration-base.sqlite

clean:
	rm -rf var/reports var/*.sqlite*
