# Every target installs what it needs on first use and is quick once that is done.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_DIR := tools/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed
BOARD ?= esp32
PORT ?=
FIRMWARE ?=
PYTEST_ARGS ?=
# Test files run side by side (pytest-xdist), each file whole in one worker so that a module's hub
# starts once, in the order tests/conftest.py gives (the minute-long files first; xdist's own
# reorder, by test count, put them last). A run is mostly waiting on hubs, boards and sleeps:
# 3 workers keep 2 cores about 70% busy.
TEST_WORKERS ?= 3

.PHONY: setup node test run bench mpy hub flash deploy clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	$(VENV)/bin/boardkit vendor
	touch $@

node: $(NODE_STAMP)

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: setup node
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

run: setup node
	$(PY) -m hostemu.demo --board $(BOARD)

bench: setup node
	$(PY) -m bench

mpy: setup
	$(VENV)/bin/boardkit mpy --board $(BOARD)

hub: setup node
	$(VENV)/bin/localhub serve

flash: setup
	$(VENV)/bin/boardkit flash --board $(BOARD) --port "$(PORT)" --firmware "$(FIRMWARE)"

deploy: setup
	$(VENV)/bin/boardkit deploy --board $(BOARD) --port "$(PORT)"

clean:
	rm -rf $(VENV) $(NODE_DIR)/node_modules build state
