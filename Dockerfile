# Deployment image (not exercised by the tests here). One image runs every role:
#   rasa server:      python -m bot.rasa_server run --model models/assistant.tar.gz --endpoints bot/endpoints.prod.yml --credentials bot/credentials.yml --enable-api --auth-token $RASA_API_TOKEN
#   action server:    rasa run actions --actions actions
#   reminder worker:  python -m bot.reminder_worker
#   migrations:       python -m bot.run_prod --prepare-only   (creates Rasa's events table, then migrates)
FROM python:3.10-slim
ENV PYTHONDONTWRITEBYTECODE=1 RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2 SQLALCHEMY_SILENCE_UBER_WARNING=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot bot
COPY actions actions
COPY channels channels
RUN pip install --no-cache-dir "pip<25" "setuptools<71" wheel && pip install --no-cache-dir .
COPY . .
RUN pybabel compile --use-fuzzy -d locales -D messages \
 && rasa train --config config.yml --domain bot/domain --data bot/data/nlu bot/data/rules bot/data/stories --out models --fixed-model-name assistant
EXPOSE 5005 5055
CMD ["python", "-m", "bot.rasa_server", "run", "--model", "models/assistant.tar.gz", "--endpoints", "bot/endpoints.prod.yml", "--credentials", "bot/credentials.yml"]
