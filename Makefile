# AgentFlow — the two set-up commands of the README:
#   make demo   runs a real workflow on real local models (installs what it needs)
#   make test   runs every test, including the real-model end-to-end ones
SHELL := /bin/bash
AGENTFLOW := .build/release/agentflow

.PHONY: deps build release models demo test bench-dispatch bench-planner clean

deps:
	@bash tools/install-deps.sh

build: deps
	swift build

release: deps
	swift build -c release

# Python venv with llama-cpp-python[server] and the two model packages, then one server per model.
models: deps
	bash tools/setup-models.sh
	bash tools/start-models.sh

# The report stays after the run; `agentflow attempts|ledger|report JOB` read the demo's
# database (.agentflow/agentflow.db) with no coordinator running.
DEMO_REPORT := .agentflow/demo-report.html
demo: release models
	@mkdir -p .agentflow
	$(AGENTFLOW) run workflows/number-helpers.yaml --cluster cluster-local.yaml --report $(DEMO_REPORT); \
	status=$$?; echo "report: $(DEMO_REPORT) (open it in a browser)"; exit $$status

test: build models
	AGENTFLOW_REQUIRE_MODELS=1 swift test
	bash tools/api-check.sh
	bash tools/python-client-test.sh
	bash tools/traces-check.sh
	bash tools/deploy-check.sh

bench-dispatch: release
	$(AGENTFLOW) bench dispatch

bench-planner: release
	$(AGENTFLOW) bench planner --pool ../shared/bench/pool-public.jsonl

clean:
	bash tools/start-models.sh --stop || true
	rm -rf .build .agentflow
