# The two commands a newcomer needs: `make run` and `make test`. Everything else is a step of them.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
RASA := $(VENV)/bin/rasa
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PYTHONDONTWRITEBYTECODE := 1
export PYTHONWARNINGS := ignore

MODEL := models/assistant.tar.gz
TRAIN_DATA := bot/data/nlu bot/data/rules bot/data/stories
MODEL_INPUTS := config.yml $(shell find bot/domain bot/data/nlu bot/data/rules bot/data/stories bot/nlu -type f 2>/dev/null)
CATALOGS := $(wildcard locales/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)

.PHONY: run test chat setup venv catalogs model db eval bench missing new-language clean \
	chromium dashboard demo-data bench-dashboard run-prod sms-report

run: setup ## set everything up and start the assistant (Rasa, actions, web chat)
	$(PY) -m bot.run

test: setup chromium ## set everything up and run the whole test suite
	$(PY) -m pytest

chromium: ## Debian's chromium and chromium-driver, for the dashboard's browser tests
	scripts/install-chromium.sh

dashboard: venv db ## the staff dashboard alone (http://localhost:5006/)
	$(PY) -m bot.dashboard serve --port $${DASHBOARD_PORT:-5006}

demo-data: venv db ## fill the database with a synthetic history (10,000 users, 1,000,000 events)
	$(PY) -m bot.demo_data $(if $(REPLACE),--replace)

bench: setup ## latency, throughput and memory of the assistant against a minimal Rasa bot (reports/bench.json)
	$(PY) -m bot.bench

bench-dashboard: venv ## time every dashboard page on the demo data in PostgreSQL
	$(PY) -m bot.dashboard.bench

sms-report: venv catalogs ## SMS segments per language over every response (WORST=10 also lists the costliest)
	$(PY) -m channels.sms report $(if $(WORST),--worst $(WORST))

run-prod: setup ## production setup on this machine: 2 Rasa replicas behind a balancer, PostgreSQL, Redis
	$(PY) -m bot.run_prod

chat: setup ## a terminal chat against the same model and actions
	$(PY) -m bot.run --shell

setup: venv catalogs model db

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml scripts/find-python310.sh
	@py=$$(scripts/find-python310.sh) || exit 1; \
	  [ -x $(PY) ] || $$py -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip<25" "setuptools<71" wheel
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip check
	touch $@

catalogs: $(COMPILED)
locales/%/LC_MESSAGES/messages.mo: locales/%/LC_MESSAGES/messages.po $(VENV)/.installed
	$(VENV)/bin/pybabel compile --use-fuzzy -d locales -D messages -l $* >/dev/null

model: $(MODEL)
$(MODEL): $(MODEL_INPUTS) $(VENV)/.installed
	@mkdir -p var; start=$$(date +%s); \
	$(RASA) train --config config.yml --domain bot/domain --data $(TRAIN_DATA) \
	  --out models --fixed-model-name assistant && \
	echo $$(( $$(date +%s) - start )) > var/train_seconds.txt

db: $(VENV)/.installed
	$(PY) -m bot.storage upgrade

eval: setup ## train on the training data, evaluate on the held-out split
	$(PY) -m bot.evaluate

missing: venv ## list what a language lacks: make missing LANG=fr
	$(PY) -m bot.i18n_tools missing $(LANG)

new-language: venv ## start a new language: make new-language LANG=tr
	$(PY) -m bot.i18n_tools new $(LANG)

clean:
	rm -rf $(VENV) models/*.tar.gz var .rasa $(COMPILED)
