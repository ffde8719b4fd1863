# corral: the two commands are `make demo` and `make test`.
# Both install what they need (Debian packages as root, a venv in .venv).

SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
# Debian packages the test suite, the lab and the demo use (real peers, not mocks).
APT_PACKAGES := python3-venv postgresql udhcpc isc-dhcp-client isc-dhcp-relay tftp-hpa atftp \
	qemu-system-x86 qemu-utils ipxe-qemu ovmf ipxe busybox-static kmod cpio aria2 iproute2 \
	openipmi ipmitool snmpd snmp skopeo umoci debootstrap zstd rsync dropbear-bin e2fsprogs fdisk gcc curl

.PHONY: all deps venv lint typecheck test test-fast demo bench clean

all: test

deps:
	@./scripts/apt-install $(APT_PACKAGES)

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: venv
	$(VENV)/bin/mypy

test: deps venv lint typecheck
	CORRAL_TEST_REQUIRE_ALL=1 $(VENV)/bin/pytest

test-fast: venv
	$(VENV)/bin/pytest -m "not slow and not vm"

demo: deps venv
	@./scripts/demo

bench: deps venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
