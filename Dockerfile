# syntax=docker/dockerfile:1
#
# zdgate container image: a static Go binary on distroless, running as the image's nonroot user
# (65532:65532, the uid the Helm chart's securityContext expects).
#
#   docker build --build-arg VERSION=1.2.3 --build-arg COMMIT=$(git rev-parse --short HEAD) -t zdgate .
#
# `make docker-check` (scripts/docker-check.sh) runs the `go build` RUN instruction below on the host,
# without Docker, and checks that the binary is static and reports VERSION: keep exactly one RUN
# instruction containing `go build`, writing to /out/zdgate.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so a source change does not re-download them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/zdgate ./cmd/zdgate

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="zdgate" \
      org.opencontainers.image.description="Authenticating reverse proxy that turns a verified OIDC identity into Zendesk JWTs" \
      org.opencontainers.image.source="https://github.com/zdgate/zdgate" \
      org.opencontainers.image.url="https://github.com/zdgate/zdgate" \
      org.opencontainers.image.documentation="https://github.com/zdgate/zdgate#readme" \
      org.opencontainers.image.vendor="zdgate" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
COPY --from=build /out/zdgate /zdgate
USER nonroot:nonroot
# 4180: proxy (--listen), 9090: Prometheus /metrics (--metrics-listen).
EXPOSE 4180 9090
ENTRYPOINT ["/zdgate"]
CMD ["serve"]
