# The two commands of the README are `make demo` and `make test`; the rest are conveniences.
PY := .venv/bin/python

.PHONY: demo test replay lint format stop host serve export package plan smoke soak clean

demo:            ## fresh machine -> demo database exported to CSV in Azurite
	scripts/bootstrap.sh
	$(PY) -m devstack demo

test:            ## lint + the whole test suite (starts its own Azurite and PostgreSQL)
	scripts/bootstrap.sh --server
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

replay:          ## the shipped data in time order through monitor -> retrain -> gate -> promote (.local/demo/replay/)
	scripts/bootstrap.sh
	$(PY) -m devstack.replay

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format:
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

stop:            ## stop the demo's Azurite
	$(PY) -m devstack down

host:            ## run the function app locally and fire timers on schedule
	$(PY) -m devstack host --watch

serve:           ## serve the app's HTTP functions on 127.0.0.1:7071, as func start does
	scripts/bootstrap.sh
	$(PY) -m devstack serve

export:          ## export now with the operator CLI (local settings)
	$(PY) -m devstack exec -- $(PY) -m functions export

package:         ## build the deployment package in .build/functionapp
	$(PY) -m infra.package

STACK ?= dev
plan:            ## offline plan of a Pulumi stack (no Azure login): make plan STACK=prod
	$(PY) -m infra.plan $(STACK)

# `make smoke` checks the local stack (STACK left at its default means local here); STACK=dev|preprod|prod
# checks a deployed stack (Pulumi and Azure CLIs logged in).
smoke:           ## post-deploy smoke test: export -> scoring -> HTTP, end to end (make smoke STACK=local)
	$(PY) scripts/smoke.py --stack $(if $(filter file undefined,$(origin STACK)),local,$(STACK))

soak:            ## 50 files into scoring-input/ at once, 2 racing local hosts: each scored exactly once
	$(PY) -m bench.soak --files 50 --hosts 2

clean:
	$(PY) -m devstack down || true
	rm -rf .local .build
