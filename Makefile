# make test  — installs what the tests need (redis-server) and runs every test with -race.
# make bench — benchmarks; not part of make test.
GO ?= go

.PHONY: test bench check deps

test: deps
	$(GO) test -race -count=1 ./...

# deps installs redis-server when it is missing: the tests start private
# instances of it (never a Redis someone else runs).
deps:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server (tests start private instances of it)"; \
	    (apt-get install -y -q redis-server >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null; }) \
	      || { echo "could not install redis-server with apt-get"; exit 1; }; \
	  else \
	    echo "redis-server is missing: install it (Debian: sudo apt-get install redis-server) and run make test again"; exit 1; \
	  fi; }

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee bench.out

# check is what CI adds to make test: vet, gofmt, staticcheck.
check:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
