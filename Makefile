# The two README commands, `make demo` and `make test`, plus the build and the benchmark.
# Each target first installs the missing Debian packages it needs (scripts/deps.sh: the build
# mode for `make`, `make duka`, `make demo` and `make sim`, only what duka links; the test mode,
# with cmocka, valgrind, PostgreSQL, nginx …, for the targets that run tests), then builds
# with CMake only what it runs.
JOBS ?= 2
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30
# The deterministic simulator (tests/sim): `make sim SEEDS=N [SEED=S] [COMMANDS=M]`. SEED
# defaults to one drawn from the clock (printed, so a failure can be rerun); `make test` runs
# seeds 1..2000.
SEEDS ?= 2000
COMMANDS ?= 500

.PHONY: all duka build-all asan tsan valgrind deps deps-test deps-bench demo test bench fuzz sim \
	chaos clean

CONFIGURE = cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

all: duka

# What building duka takes, and no more: a shop's machine needs nothing for the tests.
deps:
	@bash scripts/deps.sh build

deps-test:
	@bash scripts/deps.sh test

deps-bench:
	@bash scripts/deps.sh bench

# `make`: build/duka and nothing else (no unit tests, no harnesses).
duka: deps
	@$(CONFIGURE)
	@cmake --build $(BUILD) -j $(JOBS) --target duka

# Every target of the plain build: duka, the unit tests, the checker, the simulator, the
# storage harness, duka-bench, the fuzz replays.
build-all: deps-test
	@$(CONFIGURE)
	@cmake --build $(BUILD) -j $(JOBS)

asan: deps-test
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DDUKA_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

demo: duka
	$(BUILD)/duka demo $(if $(DIR),--dir $(DIR)) $(if $(LISTEN),--listen $(LISTEN))

tsan: deps-test
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DDUKA_TSAN=ON >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS) --target duka

# Unit tests under valgrind (memcheck, leaks) and one end-to-end run with every duka process
# under valgrind (tests/valgrind-duka.sh).
valgrind: build-all
	@VALGRIND_FULL=1 bash tests/valgrind.sh $(BUILD)

# In order: the unit tests and the browser tests of the web UI (tests/ui) on the plain build
# that `make` ships; the deterministic simulator (2,000 seeds x 500 commands, plain build,
# split over JOBS processes); the short chaos run
# (>= 1,000 kill/fault events on real processes); valgrind; a ThreadSanitizer
# run of the tests that exercise the till's worker and the hub's threads; then the whole
# suite (unit, end-to-end, fuzz replay) under AddressSanitizer + UndefinedBehaviorSanitizer
# with leak checking — ctest's closing line summarises that whole suite.
test: build-all asan tsan
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -R '^(unit|ui)/'
	@bash tests/sim/run.sh $(BUILD) 1 2000 500 $(JOBS)
	@bash tests/chaos/run.sh short $(BUILD)
	@bash tests/valgrind.sh $(BUILD)
	@bash tests/tsan.sh $(TSAN_BUILD)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

sim: deps
	@$(CONFIGURE)
	@cmake --build $(BUILD) -j $(JOBS) --target duka-sim
	@bash tests/sim/run.sh $(BUILD) $(or $(SEED),$$(date +%s)) $(SEEDS) $(COMMANDS) $(JOBS)

# Real processes, real kills (tests/chaos/README.md): tills selling while the hub, tills, sells
# and syncs are SIGKILLed and a seeded fault proxy breaks the network; >= 20,000 events (~15 min).
# SEED=N repeats a seed's decisions, EVENTS=N changes the count.
chaos: build-all
	@SEED=$(SEED) EVENTS=$(EVENTS) bash tests/chaos/run.sh long $(BUILD)

bench: deps-bench
	@bash bench/run.sh $(BUILD)

# libFuzzer targets (fuzz/README.md), built by clang in their own build dir. Each runs for
# FUZZ_SECONDS on a copy of its corpus in a temp dir (the repo corpus is not flooded with
# generated inputs); crash files land in that dir and are listed. Fails if any target crashed.
fuzz:
	@bash scripts/deps.sh fuzz
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDUKA_FUZZ=ON \
	  -DDUKA_SANITIZE=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@work=$$(mktemp -d); failed=""; \
	for src in fuzz/fuzz_*.c; do \
	  name=$$(basename $$src .c); name=$${name#fuzz_}; \
	  mkdir -p $$work/$$name/corpus $$work/$$name/crashes; \
	  cp fuzz/corpus/$$name/* $$work/$$name/corpus/ 2>/dev/null || true; \
	  echo "fuzz: $$name for $(FUZZ_SECONDS) s"; \
	  if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	     $(FUZZ_BUILD)/fuzz_$$name -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	     -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$$work/$$name/crashes/ \
	     $$work/$$name/corpus >$$work/$$name/log 2>&1; then \
	    echo "fuzz: $$name ok: $$(grep -m1 'stat::number_of_executed_units' $$work/$$name/log | awk '{print $$2}') executions"; \
	  else \
	    failed="$$failed $$name"; tail -n 40 $$work/$$name/log; \
	    echo "fuzz: $$name FAILED; crash files:"; ls -1d $$work/$$name/crashes/* 2>/dev/null; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashed:$$failed (inputs kept in $$work)"; exit 1; fi; \
	rm -rf $$work; echo "fuzz: all targets ran $(FUZZ_SECONDS) s without a crash"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
