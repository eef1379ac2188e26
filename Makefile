# The two quick-start commands: `make demo` and `make test`. Each sets up
# the virtual environment first (once; again when pyproject.toml changes).
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo-output

.PHONY: setup system-deps demo test proto clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	$(PY) -c "import semcom.tools.cli"
	touch $@

demo: setup
	$(VENV)/bin/semcom demo --out $(DEMO_OUT)

# The deploy tests use Debian's prometheus (and promtool) and docker-compose;
# installed here where apt-get and root allow, otherwise those tests skip and say why.
system-deps:
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v docker-compose >/dev/null; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages prometheus and docker-compose for the deploy tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			prometheus docker-compose >/dev/null) || echo "could not install them: the deploy tests that need them will skip"; \
	else \
		echo "prometheus or docker-compose missing and no root apt-get: the deploy tests that need them will skip"; \
	fi

test: setup system-deps
	$(PY) -m pytest

# Regenerates common/pb from proto/ (commit the result).
proto: setup
	$(PY) -m semcom.common.protogen

clean:
	rm -rf $(VENV) $(DEMO_OUT)
