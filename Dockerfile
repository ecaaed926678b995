# fleetflow's image: the workers and the starter CLI as static binaries on
# distroless, running as non-root (uid 65532). The manifests in deploy/ use
# it (ghcr.io/fleetflow/fleetflow).
#   docker build --build-arg FLEETFLOW_BUILD_ID=0.1.0 -t ghcr.io/fleetflow/fleetflow:0.1.0 .
# FLEETFLOW_BUILD_ID (use the tag) makes the workers version <id> of the
# Temporal Worker Deployment "fleetflow" (config worker.versioning; README,
# "Releasing a new worker version"); empty = unversioned workers.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/workers ./workers && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/starter ./starter

FROM gcr.io/distroless/static-debian12:nonroot
ARG FLEETFLOW_BUILD_ID=""
ENV FLEETFLOW_WORKER_VERSIONING_BUILD_ID=${FLEETFLOW_BUILD_ID}
COPY --from=build /out/workers /out/starter /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/workers"]
