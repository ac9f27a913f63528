# gitops-resource: the commands a developer and CI run.
SHELL := /bin/bash
GO ?= go
BIN := bin

.PHONY: demo-concourse test deps tools tools-k8s tools-agents tools-concourse build demo cluster bench fmt vet

## test: install what the tests need, build the test tools once, run every test.
test: deps tools vet
	$(GO) test -count=1 -timeout 40m ./...

## deps: system packages the tests drive (git's server side, openssl).
deps:
	@hack/deps.sh

## tools: the Kubernetes control plane, the Flux and Argo CD agents and Concourse (web, worker,
## fly, registry-image) for the tests, built once per machine from Go modules (cached by each
## tools module's go.sum).
tools: tools-k8s tools-agents tools-concourse

tools-k8s:
	@hack/k8s-build.sh >/dev/null

tools-agents:
	@hack/agents-build.sh >/dev/null

tools-concourse:
	@hack/concourse-build.sh >/dev/null

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

## build: the multi-call binary, hard-linked as check, in and out, as in the image.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)/check ./check
	ln -f $(BIN)/check $(BIN)/in
	ln -f $(BIN)/check $(BIN)/out

## demo: run the push-style delivery job end to end on embedded servers (git, registry,
## control plane, all on 127.0.0.1), printing each step.
demo: deps tools-k8s
	$(GO) test -count=1 -v -run 'TestDemo' ./e2e/demo/

## demo-concourse: the same job as a pipeline in a real Concourse (web, containerd worker,
## postgres in a private network namespace; needs root), printing the stack, the build log and
## the resulting git and cluster state.
demo-concourse: deps tools-k8s tools-concourse
	$(GO) test -count=1 -v -run 'TestConcourseEndToEnd' ./e2e/concourse/

## cluster: start the local control plane and print its KUBECONFIG; Ctrl-C stops it.
cluster: tools-k8s
	@hack/cluster.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: the binaries next to the git CLI doing the same work, same inputs, same run.
bench: deps tools-k8s
	$(GO) test -run '^$$' -bench . -benchtime 10x -count 5 ./bench/
	$(GO) test -run '^$$' -bench Edit -count 5 ./pkg/yamledit/
	$(GO) test -run '^$$' -bench Apply100 -benchtime 3x -count 3 ./pkg/cluster/
