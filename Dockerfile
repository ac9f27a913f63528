# syntax=docker/dockerfile:1
# gitops-resource: one static binary, hard-linked as /opt/resource/check, in
# and out. internal/image builds the same layout without Docker, and its tests
# check this file copies what that layout holds.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /opt/resource/check ./check \
 && ln /opt/resource/check /opt/resource/in \
 && ln /opt/resource/check /opt/resource/out

# `docker build --target test .` runs the unit and end-to-end tests that need
# only git and openssl (the control-plane tests run in CI via `make test`).
FROM build AS test
RUN apt-get update && apt-get install -y --no-install-recommends git openssl \
 && go vet ./... && go test ./pkg/semver/... ./pkg/gitrepo/... ./pkg/resource/... ./pkg/imageref/... ./pkg/yamledit/...

# Minimal final base: CA certificates, /etc/passwd, tzdata, nothing else.
FROM gcr.io/distroless/static-debian12 AS final
COPY --from=build /opt/resource /opt/resource
