# zenoload: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin/zeno-worker
FUZZTIME ?= 20s

.PHONY: all build venv bootstrap demo test unit vet fuzz integration e2e compose bench soak clean

all: build

bootstrap:
	bash scripts/bootstrap.sh

build:
	$(GO) build -o $(BIN) ./worker

venv: bootstrap

# A shortened smoke scenario against the embedded fake Zeno: no token needed.
demo: bootstrap build
	./$(BIN) scenario smoke --duration 30s

# Exactly what CI runs.
test: bootstrap vet unit fuzz integration e2e compose

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test -race -short -count=1 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./locust/

integration:
	ZENOLOAD_REQUIRE_MASTERS=1 $(GO) test -count=1 -timeout 15m ./...

e2e: build
	ZENOLOAD_REQUIRE_MASTERS=1 bash scripts/e2e-smoke.sh

compose: build
	docker-compose -f docker-compose.yml config -q
	$(GO) test -count=1 -run TestComposeFlagsExist ./worker/

bench: build
	bash bench/run.sh

soak: build
	bash bench/soak.sh

clean:
	rm -rf bin reports artifacts
