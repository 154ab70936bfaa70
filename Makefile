# The two README commands, `make demo` and `make test`, plus the build and the benchmark.
# Each target first installs missing Debian packages (scripts/deps.sh), then builds with CMake.
JOBS ?= 2
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all duka deps demo test test-unit test-asan bench clean

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

# The whole suite under ASan+UBSan (unit + end-to-end), then the unit tests on the plain
# build that `make` ships. ctest prints the closing summary line.
test: duka asan
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -R '^unit/'

bench: duka
	@bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
