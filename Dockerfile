# syntax=docker/dockerfile:1
# gitops-resource: one static binary, hard-linked as /opt/resource/check, in
# and out, the static binary /opt/resource/cluster they start for kinds
# cluster and artifact, the CA bundle and /tmp, on nothing. The build stage runs the
# builder of `make image` (hack/image, internal/image) for the platform Docker
# builds for and unpacks the very layer it puts in the index, so `docker
# build .` and `make image` lay out the same files (internal/image's tests
# check this file does so). `make image` is the reproducible way (same commit,
# same digests); Docker adds its own timestamps.
#
#   docker build -t gitops-resource .
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/<repo>:<tag> --push .

FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETARCH
RUN go run ./hack/image -platform linux/${TARGETARCH} -layer /layer.tar \
 && mkdir /rootfs && tar -xf /layer.tar -C /rootfs

# `docker build --target test .` runs `make test-unit`: vet, and the unit and
# end-to-end tests that need only git, gpg, ssh, openssl and GNU time (go test
# -short; the control-plane, agent and Concourse tests run in CI via `make
# test`). The golang image has git and ssh already.
FROM build AS test
RUN apt-get update && apt-get install -y --no-install-recommends git gnupg openssh-client openssl time \
 && make test-unit

FROM scratch
COPY --from=build /rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ARG VERSION=dev REVISION=unknown
LABEL org.opencontainers.image.source=https://github.com/gitops-resource/gitops-resource \
      org.opencontainers.image.revision=$REVISION \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.licenses=Apache-2.0
