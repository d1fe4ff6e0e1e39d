# syntax=docker/dockerfile:1
#
# horust, horustctl and horust-probe (which runs https health checks) as
# static binaries in a small image.
#
#   docker build -t horust .                        # services mode (the default target)
#   docker build --target oneshot -t horust-oneshot .
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#                --build-arg COMMIT=$(git rev-parse HEAD) -t horust .
#
# The binaries are /horust, /horustctl and /horust-probe; copy them into your
# own image with
#   COPY --from=horust /horust /horustctl /horust-probe /
# (horust looks for horust-probe beside itself, then in PATH.)

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so that a change in the sources does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
# Static binaries: no cgo, no libc; the release build's flags, which CI checks
# (scripts/release --check-dockerfile).
ENV CGO_ENABLED=0
RUN go build -trimpath -buildvcs=false -ldflags "-s -w -X github.com/horust-go/horust/internal/buildinfo.version=${VERSION} -X github.com/horust-go/horust/internal/buildinfo.commit=${COMMIT}" -o /out/horust ./cmd/horust \
 && go build -trimpath -buildvcs=false -ldflags "-s -w -X github.com/horust-go/horust/internal/buildinfo.version=${VERSION} -X github.com/horust-go/horust/internal/buildinfo.commit=${COMMIT}" -o /out/horustctl ./cmd/horustctl \
 && go build -trimpath -buildvcs=false -ldflags "-s -w -X github.com/horust-go/horust/internal/buildinfo.version=${VERSION} -X github.com/horust-go/horust/internal/buildinfo.commit=${COMMIT}" -o /out/horust-probe ./cmd/horust-probe

# The runtime: a small base with a shell, because services are usually
# commands such as "/bin/sh -c '...'". horust itself needs nothing from it.
FROM alpine:3.22 AS base
COPY --from=build /out/horust /out/horustctl /out/horust-probe /
RUN mkdir -p /etc/horust/services /var/run/horust
# horust's graceful shutdown starts on SIGTERM (a second one makes it forceful).
STOPSIGNAL SIGTERM

# One-shot mode: horust runs one command as an init (reaps zombies, forwards
# signals, exits with the command's exit code). Give the command as CMD or as
# the arguments of `docker run IMAGE CMD...`.
FROM base AS oneshot
ENTRYPOINT ["/horust", "--"]
CMD ["/bin/sh", "-c", "echo 'horust: give the command to run after the image name'"]

# Services mode (the default target): one TOML file per service in
# /etc/horust/services (mount them or COPY them in an image built FROM this one).
# Add "--http-addr", "0.0.0.0:8081" for /healthz, /readyz and /metrics.
FROM base AS services
ENTRYPOINT ["/horust", "--services-path", "/etc/horust/services"]
