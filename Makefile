# make test  — installs what the tests need (redis-server, chromium) and runs every test with -race.
# make bench — benchmarks; not part of make test.
# make bench-intake — leadgate web against a bare intake, side by side; not part of make test.
# make bench-worker — leadgate's routing against a no-op asynq handler; not part of make test.
# make bench-fanout — a campaign's fan-out against a bare loop posting the same bodies; not part of make test.
# make bench-purge — the retention purge against bare UNLINK, and intake beside it; not part of make test.
# make soak — leadgate web under steady load for SOAK_DURATION (default 10m); not part of make test.
# make fuzz  — every go test -fuzz target for FUZZTIME each (default 30s); not part of make test.
# make screenshots — PNGs of the public pages into docs/form and of the console into docs/console; not part of make test.
GO ?= go

.PHONY: test bench bench-intake bench-worker bench-fanout bench-purge soak check deps deps-redis fuzz screenshots

test: deps
	$(GO) test -race -count=1 ./...

# install-missing installs the commands of $(1) that are missing, with
# apt-get (each has the name of its Debian package), or says how to.
install-missing = @missing=; for cmd in $(1); do \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$cmd"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (the tests start them)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    (apt-get install -y -q$$missing >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q$$missing >/dev/null; }) \
	      || { echo "could not install$$missing with apt-get"; exit 1; }; \
	  else \
	    echo "missing:$$missing (the tests start them); install (Debian: sudo apt-get install$$missing) and run make again"; exit 1; \
	  fi; \
	fi

# deps installs the programs the tests start that Go does not build:
# redis-server (private instances of it, never a Redis someone else runs),
# chromium (the form and the console are tested in headless Chromium) and npm
# (for axe-core). It also installs axe-core with npm when node_modules lacks
# it. The benchmarks need only redis-server (deps-redis).
deps:
	$(call install-missing,redis-server chromium npm)
	@# axe-core (package.json, pinned in package-lock.json) is injected into
	@# the console's pages by the browser tests to check accessibility.
	@if [ ! -f node_modules/axe-core/axe.min.js ]; then \
	  command -v npm >/dev/null 2>&1 || { echo "missing: npm (the browser tests need axe-core from it); install node and npm and run make test again"; exit 1; }; \
	  echo "installing axe-core (npm ci)"; npm ci --no-audit --no-fund >/dev/null || exit 1; \
	fi

deps-redis:
	$(call install-missing,redis-server)

bench: deps-redis
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee bench.out

# bench-intake builds leadgate and the load tool (cmd/loadgen), which starts
# one private redis-server (a unix socket in a temporary directory, never
# port 6379), `leadgate web` and the bare baseline (decode, the same
# validator, one asynq Enqueue) on it, and loads them in alternating paired
# rounds: BENCH_ROUNDS rounds of BENCH_DURATION at BENCH_CONNS connections;
# per-round figures, medians, the ratio and the targets. The tool kills
# every process it started however it ends (its children die with it).
BENCH_ROUNDS ?= 3
BENCH_DURATION ?= 10s
BENCH_CONNS ?= 64
bench-intake: deps-redis bin/leadgate bin/loadgen
	bin/loadgen bench -leadgate bin/leadgate -rounds $(BENCH_ROUNDS) -d $(BENCH_DURATION) -c $(BENCH_CONNS)

# bench-worker: leadgate's worker routing leads (accepted by leadgate web)
# to a webhook receiver that answers at once, their acknowledgements to a
# SendGrid fake that does too, against a no-op asynq handler with the
# worker's configuration taking as many tasks from the same queue, and the
# bare router (read, post, record, mail, record: the least any router does):
# BENCH_ROUNDS rounds of BENCH_LEADS each; rates, CPU and Redis work per lead.
BENCH_LEADS ?= 2000
bench-worker: deps-redis bin/leadgate bin/loadgen
	bin/loadgen bench-worker -leadgate bin/leadgate -rounds $(BENCH_ROUNDS) -n $(BENCH_LEADS)

# bench-fanout: BenchmarkCampaignFanOut (jobs/campaign_bench_test.go: a
# 100,000-recipient campaign through leadgate and the bare loop posting the
# same SendGrid bodies to a local fake, on a private redis-server) once a
# round, BENCH_ROUNDS rounds, alternating which goes first; each runs a
# warm-up campaign and then two measured ones. Per-round recipients/s, CPU
# and load average, medians, the ratio. The benchmark process collects
# garbage as a leadgate worker does (GOGC=400, cmd/leadgate's gcPercent)
# unless GOGC is set; both sides run in it.
bench-fanout: deps-redis bin/loadgen bin/jobs.test
	GOGC=$${GOGC:-400} bin/loadgen bench-fanout -test bin/jobs.test -rounds $(BENCH_ROUNDS)

# bench-purge: BenchmarkPurge (cmd/leadgate/purge_bench_test.go) on one
# private redis-server, in PURGE_ROUNDS paired rounds of 200,000 expired
# leads each: the purge flat out against a bare pipelined UNLINK, and
# intake's latency at 500 requests/s for 5 s alone and while the clock's
# paced purge runs, each pair in alternating order; per-round figures, the
# medians, the ratios and Redis's time by command. About 30 s a round.
PURGE_ROUNDS ?= 5
bench-purge: deps-redis
	$(GO) test -run '^$$' -bench '^BenchmarkPurge$$' -benchtime 1x -timeout 30m ./cmd/leadgate -purge.rounds $(PURGE_ROUNDS)

# soak measures leadgate web's capacity at BENCH_CONNS connections, then
# loads a fresh one at half of it for SOAK_DURATION after a 10 s warm-up;
# it fails on any error, when RSS at the end exceeds its value after the
# warm-up by more than 10 %, or when, with the load's connections closed,
# more than 5 goroutines are left above the count before the load.
SOAK_DURATION ?= 10m
soak: deps-redis bin/leadgate bin/loadgen
	bin/loadgen soak -leadgate bin/leadgate -d $(SOAK_DURATION) -c $(BENCH_CONNS)

# Always rebuilt (go build is a no-op when nothing changed): the figures
# must be of the code checked out.
.PHONY: bin/leadgate bin/loadgen bin/jobs.test
bin/leadgate bin/loadgen:
	$(GO) build -o $@ ./cmd/$(@F)
bin/jobs.test:
	$(GO) test -c -o $@ ./jobs

# fuzz runs every Fuzz target of every package, one after another, for
# FUZZTIME each (make fuzz FUZZTIME=5m). The seeds (f.Add and testdata/fuzz)
# also run, briefly, in make test.
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# screenshots writes PNGs of the public pages (form, form with errors,
# thanks, confirm, unsubscribe; kk, ru, en) into SCREENSHOTS/form and of the
# console's pages (en, signed in as admin) into SCREENSHOTS/console, 1280
# and 390 px wide, from headless Chromium. The tests are behind the
# screenshots build tag, so make test never builds them and counts no
# skipped test for them.
SCREENSHOTS ?= docs
screenshots: deps
	LEADGATE_SCREENSHOTS=$(abspath $(SCREENSHOTS)) $(GO) test -tags screenshots -count=1 -run '^(TestScreenshots|TestConsoleScreenshots)$$' -v ./cmd/leadgate

# check is what CI adds to make test: vet, gofmt, staticcheck.
check:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	$(GO) vet -tags screenshots ./cmd/leadgate
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 -tags screenshots ./cmd/leadgate
