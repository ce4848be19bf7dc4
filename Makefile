# kubesmith: the two commands of the README and the pieces they are made of.
# Every target installs what it needs (Python venv from PyPI; the docker engine and
# debootstrap from Debian, through kubesmith-lab) so both work on a fresh machine as root.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
INVENTORY ?= inventory/lab
# Molecule scenarios run by `make test`, in order (each brings up and removes its own hosts).
MOLECULE_SCENARIOS ?= lab preflight vip

.PHONY: help deps lab lab-hosts lab-down test lint pytest molecule

help:
	@echo "make lab       bring up the lab cluster (inventory/lab) and prove it"
	@echo "make test      every test: lint, pytest, molecule"
	@echo "make lab-down  remove the lab hosts"

deps: $(VENV)/.deps-installed

$(VENV)/.deps-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

lab-hosts: deps
	kubesmith-lab --inventory $(INVENTORY) up
	ansible-playbook -i $(INVENTORY) playbooks/verify-hosts.yml

lab: lab-hosts
	@echo
	@echo "Lab hosts are up: kubesmith-lab --inventory $(INVENTORY) status | ssh HOST"

lab-down: deps
	kubesmith-lab --inventory $(INVENTORY) down

lint: deps
	yamllint --strict .
	ansible-lint
	ruff check .
	ruff format --check .
	mypy src plugins tests

pytest: deps
	pytest

molecule: deps
	for scenario in $(MOLECULE_SCENARIOS); do molecule test --scenario-name "$$scenario"; done

test: lint pytest molecule
