# The README's two set-up commands are `make demo` and `make test`.
# Both create .venv on first use and reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/graphops: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

.PHONY: install demo test lint constraints bench-readme
install: $(BIN)/graphops

demo: install
	$(BIN)/graphops demo

# In parallel (pytest-xdist), one worker per core, at most 4: about 4-5 minutes on 2 cores.
test: install
	$(BIN)/pytest -n auto --maxprocesses 4

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Pin the runtime dependencies for the Docker image (constraints.txt, used by the Dockerfile).
constraints:
	rm -rf .constraints-venv
	$(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/pip install --quiet .
	{ sed -n '1,3p' constraints.txt; .constraints-venv/bin/pip freeze --exclude graphops; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .constraints-venv

# The README's Performance table, regenerated from the saved results in bench/results/.
bench-readme: install
	$(BIN)/cog -r -I . README.md
