# zenoload: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin/zeno-worker
FUZZTIME ?= 20s

.PHONY: all build venv bootstrap demo test unit vet pytest fuzz integration e2e compose bench bench-smoke soak clean

all: build

bootstrap:
	bash scripts/bootstrap.sh

build:
	$(GO) build -o $(BIN) ./worker

venv: bootstrap

# A shortened smoke scenario against the embedded fake Zeno: no token needed.
# Shorter waits than the real mix (1-3 s) so 30 s shows every request type.
demo: bootstrap build
	./$(BIN) scenario smoke --duration 30s -- --zeno-wait-min 1 --zeno-wait-max 3 --zeno-think-min 0.5 --zeno-think-max 1

# Exactly what CI runs.
test: bootstrap vet unit pytest fuzz integration e2e compose bench-smoke

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test -race -short -count=1 ./...
	# Race builds use net.Conn I/O in tasks/h1; this run covers the raw-syscall path.
	$(GO) test -short -count=1 ./tasks/... ./internal/sockio/

# The master-side plugin, under both supported Locust versions.
pytest:
	.venv/bin/python -m unittest discover -s tests_py
	/usr/bin/python3 -m unittest discover -s tests_py

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./locust/
	$(GO) test -run '^$$' -fuzz '^FuzzChatRequestJSON$$' -fuzztime $(FUZZTIME) ./tasks/

integration:
	# -p 1: each package starts real masters, whose 0.5 s quit window must not
	# be starved of CPU by another package's run.
	ZENOLOAD_REQUIRE_MASTERS=1 $(GO) test -p 1 -count=1 -timeout 15m ./locust/ ./e2e/...

e2e: build
	ZENOLOAD_REQUIRE_MASTERS=1 bash scripts/e2e-smoke.sh
	bash scripts/browser-test.sh

compose: build
	docker-compose -f docker-compose.yml config -q
	$(GO) test -count=1 -run TestComposeFlagsExist ./worker/

bench: build
	bash bench/run.sh

bench-smoke: build
	bash bench/run.sh --smoke

soak: build
	bash scripts/soak.sh

clean:
	rm -rf bin reports artifacts
