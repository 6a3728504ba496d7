# xrelay: `make run` starts the whole stack locally; `make test` runs the full suite.
# Both set themselves up on a fresh machine (a .venv for the code, a .venv-sam for the SAM
# tooling, which pins its own boto3). No Docker, no AWS account.

PYTHON ?= python3
VENV   := .venv
TOOLS  := .venv-sam
BIN    := $(VENV)/bin
PORT     ?= 3000
AWS_PORT ?= 5000
SAM_CLI_VERSION ?= 1.170.0
export SAM_CLI_TELEMETRY = 0

.PHONY: install run test unit lint bench build clean

install: $(BIN)/xrelay
$(BIN)/xrelay: pyproject.toml consumer/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q -e consumer  # the consumer library (its own package; tests/test_consumer_*.py)
	@touch $@

$(TOOLS)/bin/sam:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --upgrade pip
	$(TOOLS)/bin/pip install -q 'aws-sam-cli==$(SAM_CLI_VERSION)'
	@touch $@

run: install
	$(BIN)/xrelay local --port $(PORT) --aws-port $(AWS_PORT)

# The whole suite: style, the template (cfn-lint + sam validate --lint), then pytest.
test: lint unit

unit: install
	$(BIN)/pytest

lint: install $(TOOLS)/bin/sam
	$(BIN)/ruff check layers functions tests bench consumer examples
	$(TOOLS)/bin/cfn-lint template.yaml examples/consumer/template.yaml
	AWS_DEFAULT_REGION=us-east-1 $(TOOLS)/bin/sam validate --lint -t template.yaml

bench: install
	$(BIN)/python bench/run.py

# Deployable artifacts in .aws-sam/build, no Docker. Both layers ship unchecked-hash .pyc compiled
# by python3.11 (layers/xrelay/Makefile); the check fails the build if any module lacks one.
LAYERS := XrelayLayer TracingLayer
build: $(TOOLS)/bin/sam
	AWS_DEFAULT_REGION=us-east-1 $(TOOLS)/bin/sam build --template-file template.yaml
	for layer in $(LAYERS); do \
		$(MAKE) --no-print-directory -C layers/xrelay check-pyc DIR="$(CURDIR)/.aws-sam/build/$$layer/python" || exit 1; \
	done

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .ruff_cache
