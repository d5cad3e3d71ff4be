# Multi-stage build of a static eventsidecar binary on a distroless base:
# no shell, non-root, works with a read-only root filesystem (mount a volume
# at /data for the embedded broker's store).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/eventsidecar ./cmd/eventsidecar \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/eventsidecar /usr/local/bin/eventsidecar
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
USER 65532:65532
# HTTP API and gRPC API. Both listen on 127.0.0.1 by default, which is what a
# sidecar in a pod wants; set http.listen / grpc.listen to reach them from
# outside the pod's network namespace.
EXPOSE 3600 3601
ENTRYPOINT ["/usr/local/bin/eventsidecar"]
CMD ["run"]
