# Two commands do all the set-up on a fresh machine:
#   make run   install, index documents/, serve the chat on http://127.0.0.1:8000
#   make test  install, run every test
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install index run test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: an unpinned torch would pull a multi-gigabyte GPU build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

index: install
	$(BIN)/qa index documents/

run: index
	$(BIN)/qa serve

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) index/gen-* index/CURRENT index/.lock
