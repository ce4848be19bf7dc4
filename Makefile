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
# The lab's binaries: built from Go modules into /var/cache/kubesmith/mirror, served on loopback
# (inventory/lab sets kubesmith_download_mirror_url to it). docs/bundle.md.
BUNDLE_PORT ?= 8089
LAB_STATE ?= /var/lib/kubesmith-lab
KUBECTL = /var/cache/kubesmith/mirror/dl.k8s.io/release/$$(awk '/^kubesmith_kubernetes_version:/ {print $$2}' roles/kubesmith/defaults/main.yml)/bin/linux/amd64/kubectl
# Molecule scenarios run by `make test`, in order (each brings up and removes its own hosts).
# `cluster` is the CI smoke run of setup.yml + 90-verify.yml on the lab topology (docs/cluster.md).
MOLECULE_SCENARIOS ?= lab preflight vip prepare etcd flannel cluster

.PHONY: help deps lab lab-hosts lab-down bundle mirror-up mirror-down test lint pytest molecule drills lab-soak bench

help:
	@echo "make lab       bring up the lab cluster (inventory/lab) and prove it"
	@echo "make test      every test: lint, pytest, molecule"
	@echo "make lab-down  remove the lab hosts"
	@echo "make drills    the day-2 drill: every day-2 playbook on a lab cluster, API probed (about an hour)"
	@echo "make lab-soak  SOAK_RUNS (3) fresh deploys in a row, each on new hosts; report (docs/cluster.md)"
	@echo "make bench     setup.yml timed: from bare hosts, no-op rerun, one worker added (docs/performance.md)"

deps: $(VENV)/.deps-installed

$(VENV)/.deps-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

lab-hosts: deps
	kubesmith-lab --inventory $(INVENTORY) up
	ansible-playbook -i $(INVENTORY) playbooks/verify-hosts.yml

bundle: deps
	kubesmith-bundle build

mirror-up: bundle
	@if $(PYTHON) -c 'import socket; socket.create_connection(("127.0.0.1", $(BUNDLE_PORT)), 1)' 2>/dev/null; then \
	  echo "mirror: serving on 127.0.0.1:$(BUNDLE_PORT)"; \
	else \
	  mkdir -p $(LAB_STATE); \
	  nohup kubesmith-bundle serve --port $(BUNDLE_PORT) > $(LAB_STATE)/mirror.log 2>&1 & \
	  echo $$! > $(LAB_STATE)/mirror.pid; sleep 1; \
	  echo "mirror: started on 127.0.0.1:$(BUNDLE_PORT) (log $(LAB_STATE)/mirror.log)"; \
	fi

mirror-down:
	@if [ -f $(LAB_STATE)/mirror.pid ]; then kill $$(cat $(LAB_STATE)/mirror.pid) 2>/dev/null || true; rm -f $(LAB_STATE)/mirror.pid; fi

lab: lab-hosts mirror-up
	ansible-playbook -i $(INVENTORY) setup.yml
	@echo
	@echo "The lab cluster is up. Use it from this machine:"
	@echo "  export KUBECONFIG=$(LAB_STATE)/clusters/lab/pki/kubeconfigs/admin.conf"
	@echo "  $(KUBECTL) get nodes -o wide"
	@echo "Hosts: kubesmith-lab --inventory $(INVENTORY) status | ssh HOST"

lab-down: deps mirror-down
	kubesmith-lab --inventory $(INVENTORY) down

lint: deps
	yamllint --strict .
	ansible-lint
	ruff check .
	ruff format --check .
	mypy src plugins tests molecule

pytest: deps
	pytest

# Scenarios install from the lab mirror's directory (file://): build it (cached; about an hour
# cold on 2 cores, seconds when up to date, docs/bundle.md).
molecule: deps
	kubesmith-bundle build
	for scenario in $(MOLECULE_SCENARIOS); do molecule test --scenario-name "$$scenario"; done

test: lint pytest molecule

# The day-2 drill (docs/day2.md): its own lab cluster (tests/drills/day2/inventory) deployed at
# the drill's older Kubernetes, then every day-2 playbook with a client probing the API through
# the VIP; report in /var/lib/kubesmith-lab/clusters/drill/drill-report.md. About an hour on
# 2 cores, so it is not in `make test`: run it by hand and commit its report (docs/day2.md). The older Kubernetes is built once (cached).
DRILL_FROM_VERSION = $$(awk '/^kubesmith_kubernetes_version:/ {print $$2}' tests/drills/day2/inventory/group_vars/all/cluster.yml)
drills: deps
	kubesmith-bundle build
	kubesmith-bundle --version-override kubernetes=$(DRILL_FROM_VERSION) build --components kubernetes
	kubesmith-drill

# The soak (docs/cluster.md, "Soak: fresh deploys in a row"): SOAK_RUNS deploys of inventory/lab's
# topology on hosts of its own (172.30.28.0/24), each from new hosts and a new PKI; report in
# /var/lib/kubesmith-lab/clusters/soak/soak-report.md (and SOAK_REPORT in the repository, if set).
# About 12 minutes a run on 2 cores: not part of `make test`.
SOAK_RUNS ?= 3
SOAK_REPORT ?=
lab-soak: deps mirror-up
	kubesmith-soak --runs $(SOAK_RUNS) $(if $(SOAK_REPORT),--report-to $(SOAK_REPORT))

# The bench (docs/performance.md): setup.yml from bare hosts, the no-op rerun (changed=0, no
# restart) and one added worker, timed, on hosts of its own (172.30.29.0/24). BENCH_ARGS passes
# e.g. `--label after --compare /var/lib/kubesmith-lab/clusters/bench/bench-report-before.json`.
BENCH_ARGS ?=
bench: deps mirror-up
	kubesmith-bench $(BENCH_ARGS)
