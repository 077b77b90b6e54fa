# camfleet: run `make help` for the targets.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

# Tools are built from pinned versions into a cache outside the clone (hack/tools.sh).
CONTROLLER_GEN ?= $(shell hack/tools.sh --print-controller-gen)
ENVTEST_ASSETS ?= $(shell hack/tools.sh --print-assets)
GOLANGCI_LINT ?= $(shell hack/tools.sh --print-golangci-lint)
GO_TEST_FLAGS ?= -count=1 -timeout 30m
GENERATE_PATHS := ./api/...;./controllers/...

.PHONY: all
all: generate manifests lint build ## Generate, lint and build everything.

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: tools-controller-gen ## Generate deepcopy code from the API types.
	$(CONTROLLER_GEN) object paths="./api/..."

.PHONY: manifests
manifests: tools-controller-gen ## Generate CRDs (config/crd/bases) and RBAC (config/rbac, config/rbac/agent, config/rbac/token-service) from markers.
	$(CONTROLLER_GEN) rbac:roleName=camfleet-controller crd paths="$(GENERATE_PATHS)" \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) rbac:roleName=camfleet-agent paths="./agent/..." output:rbac:artifacts:config=config/rbac/agent
	$(CONTROLLER_GEN) rbac:roleName=camfleet-token-service paths="./internal/issuer/..." output:rbac:artifacts:config=config/rbac/token-service
	cp config/crd/bases/*.yaml charts/camfleet/crds/
	cp config/rbac/role.yaml charts/camfleet/files/role.yaml
	cp config/rbac/token-service/role.yaml charts/camfleet/files/token-service-role.yaml
	cp config/admission/agent-node-fence.yaml charts/camfleet/files/agent-node-fence.yaml
	cp config/rbac/agent/role.yaml charts/camfleet/files/agent-role.yaml
	@# kubectl apply -k config/default installs what helm install does: rendered from the chart.
	$$(hack/tools.sh helm) template camfleet charts/camfleet --namespace camfleet-system --kube-version 1.37.2 --skip-tests \
		| sed -e '/^# Source: /d' -e 's/^\(    helm.sh\/chart\|    app.kubernetes.io\/managed-by\).*//' | sed '/^$$/d' > config/default/camfleet.yaml

.PHONY: verify
verify: generate manifests ## Fail if generated code differs from what is committed.
	@git diff --exit-code -- api config charts || { echo "generated files are stale: run make generate manifests and commit" >&2; exit 1; }

.PHONY: fmt
fmt: ## Format the Go code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: lint
lint: tools-golangci-lint ## gofmt, go vet and golangci-lint (pinned; .golangci.yml), all must be clean.
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	$(GOLANGCI_LINT) run ./...

.PHONY: build
build: ## Build every binary (controller, token service, agent, motion tool, kubectl plugin) into bin/.
	go build -o bin/ ./cmd/...

.PHONY: images
images: deps ## Build the controller, token service and agent images for linux/amd64 and linux/arm64 into bin/images (OCI archives for `k3s ctr images import`; docs/images.md). VERSION=... sets the tag.
	hack/images.sh

##@ Test

.PHONY: tools
tools: ## Build the pinned test tools (kube-apiserver, etcd, kubectl, kube-scheduler, kube-controller-manager, KWOK, controller-gen, helm, golangci-lint, npm jose) and fetch the VM kernel for test/vivid into the cache.
	hack/tools.sh all
	hack/jose.sh >/dev/null
	hack/vm.sh >/dev/null

.PHONY: tools-controller-gen
tools-controller-gen:
	@hack/tools.sh controller-gen >/dev/null

.PHONY: tools-golangci-lint
tools-golangci-lint:
	@hack/tools.sh golangci-lint >/dev/null

.PHONY: deps
deps: ## Install the Debian packages the tests need (hack/apt-packages.txt).
	hack/apt.sh

.PHONY: test
test: deps tools lint ## Run every test: unit, against a real API server, and the demo smoke test.
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) go test $(GO_TEST_FLAGS) ./...
	hack/demo.sh --smoke

.PHONY: bench
bench: deps ## Run every benchmark (docs/benchmarks.md): Go benchmarks per hot path, fan-out, token checks, the agent against Debian motion, the 50/200/1000-node fleet simulation; writes docs/bench/results.json, the tables and the figures. PARTS="fleet token" runs some.
	hack/tools.sh envtest >/dev/null
	hack/bench.sh

##@ Run

.PHONY: demo
demo: deps tools ## Run the main job locally: a control plane, the CRDs, the samples and the controller.
	hack/demo.sh
