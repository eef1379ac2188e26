# The two quick-start commands: `make demo` and `make test`. Each sets up
# the virtual environment first (once; again when pyproject.toml changes).
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo-output

.PHONY: setup demo test proto clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	$(PY) -c "import semcom.tools.cli"
	touch $@

demo: setup
	$(VENV)/bin/semcom demo --out $(DEMO_OUT)

test: setup
	$(PY) -m pytest

# Regenerates common/pb from proto/ (commit the result).
proto: setup
	$(PY) -m semcom.common.protogen

clean:
	rm -rf $(VENV) $(DEMO_OUT)
