# Multi-stage build of the eventsidecar image, for where a registry is at
# hand (without a daemon or a registry: go run ./internal/imagebuild, which
# builds the same image as a tarball for `docker load`).
#
#   docker build --build-arg VERSION=v1.0.0 \
#     --build-arg COMMIT=$(git rev-parse --short HEAD) -t eventsidecar:v1.0.0 .
#
# Both builds give: a static binary (CGO_ENABLED=0) at
# /usr/local/bin/eventsidecar, user 65532:65532, CA certificates at
# /etc/ssl/certs/ca-certificates.crt, /data owned by 65532 as the working
# directory, no shell. Run it with a read-only root filesystem and a volume
# at /data for the embedded broker's store:
#
#   docker run --read-only --tmpfs /tmp -v eventsidecar-data:/data eventsidecar:dev
#
# The distroless base also brings time zone data, /tmp and /home/nonroot,
# which the tarball image leaves out.

# The compiler runs on the build machine and cross-compiles for the target
# platform (docker buildx build --platform linux/amd64,linux/arm64 works).
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
# Set by BuildKit from --platform; empty (the build machine's) otherwise.
ARG TARGETOS
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
      go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/eventsidecar ./cmd/eventsidecar \
 && mkdir -m 0755 /out/data

# distroless/static: no shell, /etc/passwd with nonroot (65532) and the CA
# certificates of Debian 12.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="eventsidecar" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.source="https://github.com/eventsidecar/eventsidecar"
COPY --from=build /out/eventsidecar /usr/local/bin/eventsidecar
COPY --from=build --chown=65532:65532 /out/data /data
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /data
USER 65532:65532
# HTTP API and gRPC API. Both listen on 127.0.0.1 by default, which is what a
# sidecar in a pod wants; set http.listen / grpc.listen to reach them from
# outside the pod's network namespace.
EXPOSE 3600 3601
ENTRYPOINT ["/usr/local/bin/eventsidecar"]
CMD ["run"]
