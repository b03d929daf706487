# zeno-worker image: the Go worker (cgo, libczmq) and the fake Zeno server.
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libczmq-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/zeno-worker ./worker

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libczmq4 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home zeno
COPY --from=build /out/zeno-worker /usr/local/bin/zeno-worker
USER zeno
ENTRYPOINT ["zeno-worker"]
