# The two README commands, `make demo` and `make test`, plus the build and the benchmark.
# Each target first installs missing Debian packages (scripts/deps.sh), then builds with CMake.
JOBS ?= 2
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all duka asan deps demo test bench clean

all: duka

deps:
	@bash scripts/deps.sh

duka: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DDUKA_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

demo: duka
	$(BUILD)/duka demo $(if $(DIR),--dir $(DIR)) $(if $(LISTEN),--listen $(LISTEN))

# The unit tests on the plain build that `make` ships, then the whole suite (unit +
# end-to-end) under AddressSanitizer + UndefinedBehaviorSanitizer with leak checking.
# ctest's closing line is the summary of the whole suite.
test: duka asan
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -R '^unit/'
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

bench: duka
	@bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
