# kube-canary developer entry points. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CLUSTER_DIR := $(CURDIR)/.cluster
E2E_LOGS    := $(CURDIR)/e2e-logs

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  %-16s %s\n", $$1, $$2 }'

# ----------------------------------------------------------------------------- tests
.PHONY: test
test: ## typecheck, unit tests, then the end-to-end suite against a local control plane
	npm run typecheck
	npm run test:unit
	$(MAKE) e2e

.PHONY: e2e
e2e: ## run test/e2e against the local cluster (started if needed; stopped unless KEEP_CLUSTER=1)
	@rc=0; \
	hack/deps/prometheus.sh || rc=$$?; \
	if [[ $$rc -eq 0 ]]; then hack/cluster/up.sh >/dev/null || rc=$$?; fi; \
	if [[ $$rc -eq 0 ]]; then npm run test:e2e || rc=$$?; fi; \
	if [[ $$rc -ne 0 && -d "$(CLUSTER_DIR)/logs" ]]; then \
	  rm -rf "$(E2E_LOGS)"; mkdir -p "$(E2E_LOGS)"; cp -r "$(CLUSTER_DIR)/logs/." "$(E2E_LOGS)/"; \
	  echo "e2e: FAILED (exit $$rc); component logs copied to $(E2E_LOGS)/" >&2; \
	fi; \
	if [[ "$${KEEP_CLUSTER:-0}" == 1 ]]; then \
	  echo "e2e: cluster kept (KEEP_CLUSTER=1): export KUBECONFIG=$(CLUSTER_DIR)/kubeconfig" >&2; \
	else \
	  hack/cluster/down.sh; \
	fi; \
	exit $$rc

# ------------------------------------------------------------------- local control plane
.PHONY: cluster-build
cluster-build: ## build/fetch the control-plane binaries into ~/.cache/kube-canary (no-op when warm)
	hack/cluster/build.sh

.PHONY: cluster-up
cluster-up: ## start etcd, kube-apiserver, controller-manager, scheduler, kwok on 127.0.0.1
	hack/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## stop the local control plane (recorded pids only) and remove .cluster/
	hack/cluster/down.sh

# ------------------------------------------------------------------------------- demo
.PHONY: demo
demo: ## the canary article live: review 1.7.0 -> 1.8.0 promoted, a bad 1.9.0 rolled back (starts and stops everything)
	hack/deps/prometheus.sh
	node --import tsx hack/demo.ts
