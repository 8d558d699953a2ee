# syntax=docker/dockerfile:1
#
# tetherd, with the tether CLI and grpc-health-probe, in a distroless image
# that runs as a non-root user. From the repository root:
#
#   docker build -t tetherd .
#   docker run --rm -p 7070:7070 -p 9090:9090 \
#       -v "$PWD/tls:/etc/tether/tls:ro" -v "$PWD/tokens:/etc/tether/tokens:ro" tetherd
#
# The image reads /etc/tether/tetherd.conf (deploy/tetherd.conf): TLS from
# /etc/tether/tls/tls.crt and tls.key, principals from
# /etc/tether/tokens/tokens.json. Flags after the image name override it
# (docker run … tetherd --config /etc/tether/tetherd.conf --insecure, behind
# a load balancer that terminates TLS). deploy/check/dockerfile_test.go
# parses this file and runs its go build commands.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
COPY tools/go.mod tools/go.sum ./tools/
RUN go mod download && go mod download -modfile=tools/go.mod
COPY . .
RUN go build -ldflags=-s -o /out/tetherd ./cmd/tetherd
RUN go build -ldflags=-s -o /out/tether ./cmd/tether
RUN go build -modfile=tools/go.mod -ldflags=-s -o /out/grpc-health-probe github.com/grpc-ecosystem/grpc-health-probe

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tetherd /out/tether /out/grpc-health-probe /usr/local/bin/
COPY deploy/tetherd.conf /etc/tether/tetherd.conf
USER nonroot:nonroot
EXPOSE 7070 9090
# The gRPC health service, over TLS as the config serves it; on this
# machine's own address the certificate's name is not what is checked.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/grpc-health-probe", "-addr=127.0.0.1:7070", "-tls", "-tls-no-verify", "-service=tether.v1.TetherService"]
ENTRYPOINT ["/usr/local/bin/tetherd"]
CMD ["--config", "/etc/tether/tetherd.conf"]
