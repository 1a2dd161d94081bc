# The single entry point: a person and CI call the same targets.
# `make run` and `make test` install whatever is missing first (uv in .tools/, then the locked
# environment in .venv/ on Python 3.13, the Lambda runtime's version).
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export SAM_CLI_TELEMETRY := 0
export UV_SYSTEM_CERTS := 1
export UV_PYTHON_DOWNLOADS := never

.PHONY: chromium test-seconds lint-python lint-types lint-template checks chaos openapi screenshots run test load unit integration e2e lint format validate build requirements bench deploy clean setup asl monitoring architecture

CHECKOV := .tools/checkov

# Python may cache the bytecode of what it imports. Some machines (CI's among them) set
# PYTHONDONTWRITEBYTECODE, and then every process started here (pytest workers, the local system's fork
# servers, CLI runs) compiled boto3, moto, pydantic and Powertools from source again: seconds each.
# Compiling the whole environment ahead (uv's --compile-bytecode) cost close to a minute of every fresh
# set-up, for thousands of modules nothing imports; with the variable unset, each module is compiled
# once, by the first process that imports it.
unexport PYTHONDONTWRITEBYTECODE

setup: $(VENV)/.synced $(CHECKOV)/.synced

$(UV):
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python "$$(scripts/find-python313)"
	@touch $@

# checkov in an environment of its own (its pins, urllib3 < 2 among them, stay out of .venv and the layer).
$(CHECKOV)/.synced: $(UV) pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(CHECKOV) $(UV) sync --frozen --only-group checkov --no-install-project \
	  --python "$$(scripts/find-python313)"
	@touch $@

run: setup
	$(BIN)/tidings local up

# The whole suite (unit, integration, e2e) after the same static checks a reviewer would run (ruff, mypy,
# sam validate --lint, cfn-lint, checkov), on three pytest-xdist workers: the e2e tests wait on the local
# system much of the time, and a third worker keeps both cores busy. tests/conftest.py hands out one test
# file at a time, costliest first, tests/e2e before the rest; the slowest tests are listed so the suite's
# cost stays visible. The checks and the browser install run side by side: each is one process.
test: setup
	$(MAKE) --no-print-directory -j4 --output-sync=target lint checks chromium
	$(BIN)/pytest -n 3 --dist loadgroup --durations=15

chromium:
	scripts/ensure-chromium

# tests/test-seconds.json from the last full run's cache: the order a fresh clone hands out work units in.
test-seconds: setup
	$(BIN)/python -c 'import json, pathlib, sys; sys.path.insert(0, "tests"); import conftest; \
	  measured = json.loads(pathlib.Path(".pytest_cache/v/tidings/test-seconds").read_text()); \
	  conftest.UNIT_SECONDS_FILE.write_text(json.dumps(conftest.unit_seconds(measured), indent=0) + "\n")'


# The opt-in load run: a smoke batch of 100, then a bulk request of TIDINGS_BULK_ITEMS (default 1,000;
# 10000 for the long run) under hard provider rate limits, on the whole local system; prints items/s,
# efficiency, 429 share and peak memory per size and records them in docs/load.json. Not in `make test`.
load: setup
	TIDINGS_BULK_ITEMS=$${TIDINGS_BULK_ITEMS:-1000} $(BIN)/pytest -m load -s -p no:randomly --durations=15 \
	  tests/e2e/test_saga_bulk.py

# The chaos matrix (docs/reliability.md): every provider x fault on a local system of its own, CHAOS_SIZE
# notifications per cell (default 5); rewrites docs/reliability.md. `make test` runs a reduced matrix.
chaos: setup
	$(BIN)/pytest -m chaos --durations=15 tests/e2e
	$(BIN)/tidings chaos --size $${CHAOS_SIZE:-5}

unit: setup
	$(BIN)/pytest tests/unit

integration: setup
	$(BIN)/pytest tests/integration

e2e: setup
	scripts/ensure-chromium
	$(BIN)/pytest tests/e2e

# Screenshots of the local console and a timeline chart, for the README (docs/images/).
screenshots: setup
	scripts/ensure-chromium
	TIDINGS_SCREENSHOT_DIR=docs/images $(BIN)/pytest -p no:cacheprovider tests/e2e/test_console_browser.py

lint: lint-python lint-types lint-template

lint-python: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lint-types: setup
	$(BIN)/mypy

lint-template: setup
	$(BIN)/sam validate --lint

# The template's security and serverless checks, offline, side by side: cfn-lint with the serverless
# rules (.cfnlintrc.yaml) and checkov (.checkov.yaml); each file lists what it skips and why.
checks: setup
	$(BIN)/cfn-lint & cfn=$$!; $(CHECKOV)/bin/checkov --config-file .checkov.yaml; ck=$$?; \
	  wait $$cfn; cf=$$?; test $$ck -eq 0 -a $$cf -eq 0

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The state machine is generated: edit layers/tidings/tidings/saga/definition.py, then run this
# (tests/unit/saga/test_saga_definition_builder.py fails while the committed JSON differs).
asl: setup
	$(BIN)/python -m tidings.saga.definition statemachine/notification_saga.asl.json

validate: setup
	$(BIN)/sam validate --lint

# The layer's requirements.txt is uv.lock's runtime part, pinned with hashes, so `sam build` installs
# the versions the tests ran with. Regenerate after changing a dependency (a unit test compares them).
LAYER_REQUIREMENTS := layers/tidings/requirements.txt
requirements: $(UV)
	{ echo "# Generated from uv.lock by \`make requirements\`: do not edit. Installed into the layer by sam build."; \
	  $(UV) export --no-dev --no-emit-project --frozen --no-header; } > $(LAYER_REQUIREMENTS)

# sam build needs python3.13 on PATH (the runtime's exact minor version).
build: setup
	PATH="$$(dirname "$$(scripts/find-python313)"):$$PATH" $(BIN)/sam build --parallel

# docs/architecture.svg (and .dot), drawn from template.yaml with Graphviz (installed when missing).
architecture: setup
	scripts/ensure-graphviz
	$(BIN)/python -m tidings_local.architecture

# Alarms, log groups and the dashboard in template.yaml, from local/tidings_local/monitoring.py.
monitoring: setup
	$(BIN)/python -m tidings_local.monitoring

# The probes run in three environments of their own, from the same lock and base interpreter: the
# layer's packages only (what the deployed layer holds, nothing of the development tools), the official
# provider SDKs (the `bench` group) that Tidings' clients are compared with, and both together, where
# sending through Tidings' client and through the SDK are each measured on the same handler base.
# docs/benchmarks.md.
BENCH_LAYER := .tools/bench-layer
BENCH_SDKS := .tools/bench-sdks
BENCH_LAYER_SDKS := .tools/bench-layer-sdks
bench: setup
	UV_PROJECT_ENVIRONMENT=$(BENCH_LAYER) $(UV) sync --frozen --no-default-groups --quiet \
	  --python "$$(scripts/find-python313)"
	UV_PROJECT_ENVIRONMENT=$(BENCH_SDKS) $(UV) sync --frozen --no-default-groups --only-group bench \
	  --no-install-project --quiet --python "$$(scripts/find-python313)"
	UV_PROJECT_ENVIRONMENT=$(BENCH_LAYER_SDKS) $(UV) sync --frozen --no-default-groups --group bench \
	  --quiet --python "$$(scripts/find-python313)"
	$(BIN)/python -m tidings_local.bench --layer-python $(BENCH_LAYER)/bin/python \
	  --sdk-python $(BENCH_SDKS)/bin/python --layer-sdk-python $(BENCH_LAYER_SDKS)/bin/python

# A first deployment of ENV (default dev) is guided (sam deploy --guided, the parameters to decide
# explained first); later ones deploy as samconfig.toml saved them. GUIDED=1 asks again. docs/deploy.md.
deploy: build
	$(BIN)/python -m tidings_ops.deploy --config-env $${ENV:-dev} --sam $(BIN)/sam $${GUIDED:+--guided}

clean:
	rm -rf .venv .tools .aws-sam .pytest_cache .ruff_cache .hypothesis

# The notify API's OpenAPI snapshot (docs/openapi.json), refreshed from the code. Refuses a change that
# would break a client unless the version is raised and docs/api-changelog.md lists it (docs/api.md).
openapi: setup
	$(BIN)/python -m tidings_local.openapi
