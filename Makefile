# Two commands on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin

.PHONY: install install-test test wheel-check nginx chromium demo bench clean

# Quiet set-up: pip's output goes to a log under the venv, shown only when pip fails. Each extra is
# installed once and again only when pyproject.toml changes (a stamp per extra); the checkout is
# installed editable, so code changes need no reinstall.
$(BIN)/python:
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --upgrade pip > $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log >&2; exit 1; }

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	@$(BIN)/pip install --quiet -e '.[$*]' > $(VENV)/pip-$*.log 2>&1 || { cat $(VENV)/pip-$*.log >&2; exit 1; }
	@touch $@

install: $(VENV)/.installed-demo

install-test: $(VENV)/.installed-test

# The wheel check builds and installs in its own venvs, so it runs beside the suite (2 cores).
WHEEL_LOG := build/wheel-check.log
test: install-test nginx chromium
	@mkdir -p build; bash tests/wheel/smoke.sh $(PYTHON) > $(WHEEL_LOG) 2>&1 & wheel=$$!; \
	$(BIN)/python -m pytest; tests=$$?; \
	wait $$wheel; built=$$?; cat $(WHEEL_LOG); \
	[ $$tests -eq 0 ] && [ $$built -eq 0 ]

# Users install the wheel, not the checkout: build it, install it in a fresh venv elsewhere, run it.
wheel-check:
	bash tests/wheel/smoke.sh $(PYTHON)

# The nginx tests run the real `nginx -T` (Debian's package). As root it is installed here;
# elsewhere those tests skip with the reason (under CI=true they fail instead).
nginx:
	@if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; \
	  else echo "nginx is not installed and this is not root: the nginx -T tests will skip"; fi; \
	fi

# The HTML report is tested in Debian's headless Chromium, installed the same way.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed and this is not root: the HTML browser tests will skip"; fi; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# The bundled incident on a local AWS endpoint (moto in server mode, inside the process).
demo: install
	@$(BIN)/audit demo

# Benchmarks: whole commands against baselines measured in the same run (see bench/README.md).
# Prowler, the peer, gets its own venv here (about 2 GB): never in `make test`.
PROWLER_VENV := bench/.prowler-venv
bench: install-test
	$(BIN)/pip install --quiet -e '.[test,bench]'
	@[ -x $(PROWLER_VENV)/bin/prowler ] || { $(PYTHON) -m venv $(PROWLER_VENV) && \
	  $(PROWLER_VENV)/bin/pip install --quiet prowler || echo "prowler could not be installed: its row is skipped"; }
	@# Users run the wheel, whose modules pip compiled when it installed them; a checkout with
	@# PYTHONDONTWRITEBYTECODE set (as on these machines) would compile every module in every run.
	$(BIN)/python -m compileall -q auditor > /dev/null
	$(BIN)/python bench/run.py
	$(BIN)/python bench/collection.py
	$(BIN)/python bench/nginx.py
