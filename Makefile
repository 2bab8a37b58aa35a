# South-South Galaxy: every command a developer, CI or an operator of the local stack needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(HOME)/.local/bin:$(PATH)
UV ?= uv
RUN := $(UV) run --frozen
BREAKING_AGAINST ?= HEAD
PYTEST_ARGS ?=

.PHONY: help system-packages install protos lint format test test-unit up down status bench load k8s clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: system-packages ## install uv (if missing) and every workspace package from uv.lock
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet --user uv || python3 -m pip install --quiet --break-system-packages uv
	$(UV) sync --all-packages --frozen

# Debian packages the tests and the local stack need; installed only when missing.
SYSTEM_PACKAGES := rabbitmq-server:rabbitmq-server promtool:prometheus
system-packages:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; fi

protos: install ## regenerate libs/contracts from protos/
	$(RUN) python tools/contracts.py generate

lint: install ## ruff, mypy, generated code current, buf lint and breaking, k8s/images/rules checks
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy libs tools tests deploy/local $(wildcard services/*/src services/*/tests)
	$(RUN) python tools/contracts.py check
	@mkdir -p .build
	$(RUN) python tools/contracts.py image .build/protos.binpb
	$(RUN) buf lint .build/protos.binpb --exclude-path google
	$(RUN) python tools/contracts.py base-image .build/base.binpb $(BREAKING_AGAINST)
	@if [ -f .build/base.binpb ]; then $(RUN) buf breaking .build/protos.binpb --against .build/base.binpb --exclude-path google; fi
	$(RUN) python tools/manifests.py check

LOAD_ARGS ?= --rate 40 --seconds 60
load: install ## a fixed-rate call mix against the running local stack (after make up)
	$(RUN) python tests/load/load_mix.py $(LOAD_ARGS)

k8s: install ## render every overlay into .build/k8s (kubectl kustomize) and the alert rules
	$(RUN) python tools/manifests.py render .build/k8s
	$(RUN) python tools/manifests.py rules .build/monitoring

format: install ## apply ruff's fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

test: install ## run every test against real local servers (started by the tests)
	$(RUN) pytest $(PYTEST_ARGS)

up: install ## start local servers and every service with demo data; print endpoints
	$(RUN) python deploy/local/stack.py up

down: ## stop what `make up` started
	$(RUN) python deploy/local/stack.py down

status: ## health of every local server and service
	$(RUN) ssg status

bench: install ## run the benchmarks and write docs/benchmarks.md
	$(RUN) python tests/load/run_all.py

clean: ## remove build outputs and caches
	rm -rf .build .pytest_cache .mypy_cache .ruff_cache
