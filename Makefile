# gitops-resource: the commands a developer and CI run.
SHELL := /bin/bash
GO ?= go
BIN := bin

.PHONY: demo-local test test-unit deps tools tools-k8s tools-agents tools-concourse tools-gitea build image demo cluster bench fmt vet

## test: install what the tests need, build the test tools once, run every test.
test: deps tools vet
	$(GO) test -count=1 -timeout 40m ./...

## test-unit: vet, and the tests that need only Go, git, gpg, ssh, openssl and GNU time (the Dockerfile's
## test stage and ci/pipeline.yml's test job):
## every package under -short, where each test needing more (the control plane, the agents,
## Concourse, qemu) skips. No tools to build, no root.
test-unit:
	$(GO) vet ./...
	$(GO) test -short -count=1 ./...

## deps: system packages the tests drive (git's server side, openssl).
deps:
	@hack/deps.sh

## tools: the Kubernetes control plane, the Flux and Argo CD agents, Concourse (web, worker,
## fly, registry-image) and Gitea for the tests, built once per machine from Go modules (cached by each
## tools module's go.sum, or the version pinned in tools/gitea/VERSION).
tools: tools-k8s tools-agents tools-concourse tools-gitea

tools-k8s:
	@hack/k8s-build.sh >/dev/null

tools-agents:
	@hack/agents-build.sh >/dev/null

tools-concourse:
	@hack/concourse-build.sh >/dev/null

tools-gitea:
	@hack/gitea-build.sh >/dev/null

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

## build: the multi-call binary, hard-linked as check, in and out, and the cluster binary they
## hand kinds cluster and artifact to (so that they link neither client-go nor kustomize), as in
## the image.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)/ ./check ./cluster
	ln -f $(BIN)/check $(BIN)/in
	ln -f $(BIN)/check $(BIN)/out

## image: the resource image for linux/amd64 and linux/arm64 (one index), built by internal/image
## without Docker, reproducibly, as an OCI layout in $(IMAGE_DIR). PUSH="<registry>/<repo>:<tag> ..."
## pushes it too, with REGISTRY_USERNAME/REGISTRY_PASSWORD or docker's config.json; VERSION and
## REVISION set the labels (default: git describe --tags --always --dirty, git rev-parse HEAD).
IMAGE_DIR ?= $(BIN)/image
image:
	$(GO) run ./hack/image $(strip -o $(IMAGE_DIR) $(addprefix -push ,$(PUSH)) $(if $(VERSION),-version $(VERSION)) $(if $(REVISION),-revision $(REVISION)))

## demo: the first thing to run. A real Concourse (web, a containerd worker and postgres in a
## private network namespace; needs root) pulls this tree's image from a local registry and runs
## pipelines-examples/push-direct against a local git server and Kubernetes control plane, then
## stays up, printing the Concourse URL, the fly login and the kubeconfig, until Ctrl-C.
demo: deps tools-k8s tools-concourse
	$(GO) build -o $(BIN)/demo ./hack/demo
	$(BIN)/demo

## demo-local: the same job without Concourse and without root: the binaries run as Concourse
## runs them, on embedded servers, printing each step.
demo-local: deps tools-k8s
	$(GO) test -count=1 -v -run 'TestDemo' ./e2e/demo/

## cluster: start the local control plane and print its KUBECONFIG; Ctrl-C stops it.
cluster: tools-k8s
	@hack/cluster.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: the binaries next to the git CLI doing the same work, same inputs, same run; ends
## with one table (bench/table), each figure a median of the runs with min–max.
bench: deps tools-k8s
	set -o pipefail; { \
	  $(GO) test -run '^$$' -bench . -benchtime 10x -count 5 -timeout 60m ./bench/ && \
	  $(GO) test -run '^$$' -bench Edit -count 5 ./pkg/yamledit/ && \
	  $(GO) test -run '^$$' -bench Apply100 -benchtime 3x -count 3 -timeout 30m ./pkg/cluster/; \
	} | $(GO) run ./bench/table
