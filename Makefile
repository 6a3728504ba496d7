# xrelay: `make run` starts the whole stack locally; `make test` runs the full suite.
# Both set themselves up on a fresh machine (a .venv for the code, a .venv-sam for the SAM
# tooling, which pins its own boto3). No Docker, no AWS account.

# The first supported interpreter on PATH (xrelay needs Python >= 3.11); PYTHON=... chooses another.
SUPPORTED_PYTHONS := python3.13 python3.12 python3.11 python3
PY_VERSION = import sys; print("%d.%d" % sys.version_info[:2]); sys.exit(sys.version_info < (3, 11))
ifeq ($(origin PYTHON), undefined)
PYTHON := $(firstword $(foreach p,$(SUPPORTED_PYTHONS),$(shell command -v $(p) >/dev/null 2>&1 \
	&& $(p) -c '$(PY_VERSION)' >/dev/null 2>&1 && echo $(p))))
endif
VENV   := .venv
TOOLS  := .venv-sam
BIN    := $(VENV)/bin
PORT     ?= 3000
AWS_PORT ?= 5000
SAM_CLI_VERSION ?= 1.170.0
export SAM_CLI_TELEMETRY = 0

.PHONY: install run test unit lint bench build clean lambda-python python venv-check fuzz mutate

# One line and a stop when no supported Python is there (pip's error would come much later).
PY_FOUND = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PY_OK = $(shell $(PYTHON) -c '$(PY_VERSION)' >/dev/null 2>&1 && echo ok)
GOAL = $(or $(firstword $(MAKECMDGOALS)),install)
python:
	$(if $(PYTHON),,$(error xrelay needs Python >= 3.11 and none of $(SUPPORTED_PYTHONS) on PATH is: \
		install one (e.g. python3.11) or name it: make $(GOAL) PYTHON=/path/to/python3.11))
	$(if $(PY_OK),,$(error xrelay needs Python >= 3.11 but PYTHON=$(PYTHON) is $(or $(PY_FOUND),not runnable): \
		install 3.11 or later or name it: make $(GOAL) PYTHON=python3.11))
	@:

# A .venv made by an unsupported (or since removed) interpreter is rebuilt, not reused.
venv-check: python
	@if [ -e $(VENV) ] && ! $(BIN)/python -c '$(PY_VERSION)' >/dev/null 2>&1; then \
		echo "$(VENV) was made by an unsupported or missing Python: rebuilding it with $(PYTHON)" >&2; rm -rf $(VENV); \
	fi

install: venv-check $(BIN)/xrelay
$(BIN)/xrelay: pyproject.toml $(wildcard consumer/pyproject.toml)  # a .venv made before consumer/ existed gets it too
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q -e consumer  # the consumer library (its own package; tests/test_consumer_*.py)
	@touch $@

$(TOOLS)/bin/sam: | python
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --upgrade pip
	$(TOOLS)/bin/pip install -q 'aws-sam-cli==$(SAM_CLI_VERSION)'
	@touch $@

run: install
	$(BIN)/xrelay local --port $(PORT) --aws-port $(AWS_PORT)$(if $(FRESH), --fresh)$(if $(LOGS), --logs)

# The whole suite: style, the template (cfn-lint + sam validate --lint), then pytest.
test: lint unit

unit: install
	$(BIN)/pytest

# Issue 13's longer runs: intake's properties with thousands of examples (`make test` runs a few
# dozen), and the tests marked slow (the 10,000-event delivery).
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/test_intake_properties.py
	$(BIN)/pytest -m slow

lint: install $(TOOLS)/bin/sam
	$(BIN)/ruff check layers functions tests bench examples consumer
	$(TOOLS)/bin/cfn-lint template.yaml examples/consumer/template.yaml
	AWS_DEFAULT_REGION=us-east-1 $(TOOLS)/bin/sam validate --lint -t template.yaml

bench: install
	$(BIN)/python bench/run.py

# Mutation testing of the critical modules (tests/mutation/): the score per module and each survivor.
# Not part of `make test` or CI: minutes to an hour a module, so run it in the background of a session.
# `make mutate MODULE=signature` for one, `SAMPLE=40` for a random 40 mutants a module (an estimate);
# results stay in .mutation/<module>.txt. After writing tests, `$(BIN)/python tests/mutation/run.py
# --survivors MODULE` runs only the last survivors again against them.
MODULE ?=
SAMPLE ?=
mutate: install
	$(BIN)/python -c 'import cosmic_ray' 2>/dev/null || $(BIN)/pip install -q 'cosmic-ray>=8.7,<9'
	nice -n 19 $(BIN)/python tests/mutation/run.py $(if $(SAMPLE),--sample $(SAMPLE)) $(MODULE)

# Deployable artifacts in .aws-sam/build, no Docker. Every layer ships unchecked-hash .pyc compiled
# by python3.13 (layers/xrelay/Makefile); the check fails the build if any module lacks one.
LAYERS := XrelayLayer PydanticLayer XClientLayer TracingLayer
# Lambda's interpreter (template.yaml: Runtime python3.13), which sam build and the layers' Makefiles
# run: a python3.13 on PATH that works, else pyenv's newest 3.13 (a pyenv shim of a version that is
# not selected does not run). Override with LAMBDA_PYTHON_BIN=<directory holding python3.13>.
LAMBDA_PYTHON_BIN ?= $(or $(shell python3.13 -c 'import os, sys; print(os.path.dirname(sys.executable))' 2>/dev/null),\
	$(lastword $(sort $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.13*/bin))))
build: export PATH := $(LAMBDA_PYTHON_BIN):$(PATH)
build: $(TOOLS)/bin/sam
	AWS_DEFAULT_REGION=us-east-1 $(TOOLS)/bin/sam build --template-file template.yaml
	for layer in $(LAYERS); do \
		$(MAKE) --no-print-directory -C layers/xrelay check-pyc DIR="$(CURDIR)/.aws-sam/build/$$layer/python" || exit 1; \
	done

lambda-python:
	@test -x "$(LAMBDA_PYTHON_BIN)/python3.13" || { echo "no python3.13 found: install it (pyenv install 3.13) or set LAMBDA_PYTHON_BIN" >&2; exit 1; }
	@echo "$(LAMBDA_PYTHON_BIN)"

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .ruff_cache
