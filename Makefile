# Two commands on a fresh machine: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test test-fast lint bundle bench bench-holo selftest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=77.0.3" wheel
	$(PY) -m pip install -q -e ".[train,dev,fast]"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		$(VENV)/bin/vitascope gui; \
	else \
		echo "No display found. Showing the app offscreen for a few seconds and saving vitascope-screenshot.png."; \
		echo "For a real window: xvfb-run -a -s '-screen 0 1280x800x24' make run   (apt: xvfb libxcb-icccm4 libxcb-keysyms1)"; \
		QT_QPA_PLATFORM=offscreen $(VENV)/bin/vitascope gui --smoke --seconds 4 --screenshot vitascope-screenshot.png; \
	fi

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not bundle and not xvfb"

lint: setup
	$(VENV)/bin/ruff check .

selftest: setup
	$(VENV)/bin/vitascope selftest

bundle: setup
	$(VENV)/bin/pyinstaller --noconfirm --clean --distpath dist --workpath build build.spec
	@du -sh dist/vitascope

bench: setup
	$(PY) bench/runtime.py

# The holography benchmarks, side by side with PyHoloscope (a bench-only dependency, installed here).
bench-holo: setup
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) bench/holo_refocus.py
	$(PY) bench/holo_autofocus.py --refine-defaults

clean:
	rm -rf build dist .pytest_cache
