# Two commands on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin

.PHONY: install install-test test demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[demo]'

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

test: install-test
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# Until the collectors land, the demo runs the incident on the bundled snapshots
# (fixtures/snapshots): the findings and the gate's verdicts are real, the estates are hand-written.
DEMO := fixtures/snapshots
demo: install
	-$(BIN)/audit diff $(DEMO)/incident-dev.json $(DEMO)/incident-prod.json
	-$(BIN)/audit check $(DEMO)/incident-dev.json $(DEMO)/incident-prod.json
	-$(BIN)/audit gate $(DEMO)/incident-dev.json --slot green
	-$(BIN)/audit gate $(DEMO)/incident-dev.json --slot blue
