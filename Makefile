# regimebench: `make help` lists the targets. Every target sets up .venv itself.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo test lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-6s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "needs $(PY) on PATH (or: make PY=python3 ...)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP) ## run the default comparison (experiment=digits) and write its report
	$(BIN)/regimebench -m experiment=digits
	@echo "open multirun/digits/report/index.html (PDF: multirun/digits/report/report.pdf)"

test: $(STAMP) ## run the tests (unit, regimes, a real tiny multirun)
	$(BIN)/python -m pytest -q -rs   # -rs: every skip prints its reason

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean: ## remove sweeps, outputs and the cache (not the venv)
	rm -rf multirun outputs .cache
