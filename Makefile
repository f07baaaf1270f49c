# scpkit: the few verbs a newcomer needs. Everything else is CMake + CTest.
#   make demo    build, then run the demo on the embedded defaults
#   make check   build and run every test (gcc RelWithDebInfo), again under
#                ASan+UBSan, and again built by clang (Release); then the
#                threads tests (sessions, keystore) under ThreadSanitizer
#   make docs    the API reference of include/scpkit (doxygen) in build/docs
#   make bench   run the benchmarks (bench/results.json, bench/pcsc_results.json)
#   make fuzz    run every libFuzzer target for FUZZ_SECONDS each (clang)
#   make soak    long property and crash runs (not part of check): the
#                keystore killed at every write point, then by random kill -9;
#                a 10,000-device key rotation under chaos (tests/fleet/chaos.sh)
BUILD       ?= build
ASAN_BUILD  ?= build-asan
CLANG_BUILD ?= build-clang
TSAN_BUILD  ?= build-tsan
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
KS_SOAK_SECONDS ?= 2400
FLEET_SOAK_DEVICES ?= 10000
KS_SOAK_KILLS ?= 700
CMAKE_FLAGS ?=
VERSION     := $(shell grep -o 'scpkit VERSION [0-9.]*' CMakeLists.txt | head -1 | cut -d' ' -f3)

.PHONY: all deps build demo check check-release check-asan check-clang check-tsan docs bench fuzz soak clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	@$(BUILD)/examples/scp_engine_demo
	@if [ -x tools/demo.sh ] && [ -x $(BUILD)/tools/scpkit ]; then \
	    echo; sh tools/demo.sh $(BUILD)/tools/scpkit; fi

check: check-release check-asan check-clang check-tsan

check-release: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600

check-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSCP_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j$(JOBS) --timeout 900

check-clang: deps
	cmake -S . -B $(CLANG_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build $(CLANG_BUILD) -j$(JOBS)
	cd $(CLANG_BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600

# 8 threads of SCP03 sessions, and 8 of keystore handles deriving and
# opening sessions, under ThreadSanitizer (any data race fails them)
check-tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSCP_TSAN=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(TSAN_BUILD) -j$(JOBS) --target test_threads test_ks_threads
	cd $(TSAN_BUILD) && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	    ctest --output-on-failure -R '^test_(ks_)?threads$$' --timeout 600

docs: deps
	mkdir -p $(BUILD)/docs
	SCP_DOCS_OUT=$(BUILD)/docs SCP_VERSION=$(VERSION) doxygen docs/Doxyfile
	@echo "API reference: $(BUILD)/docs/html/index.html"

bench: build
	$(BUILD)/bench/scp_bench --json bench/results.json
	@if [ -x $(BUILD)/bench/scp_pcsc_bench ]; then \
	    bash bench/pcsc_roundtrip.sh $(BUILD) 500 || echo "PC/SC round trip not measured (see above)"; fi

fuzz: deps
	sh fuzz/run.sh $(FUZZ_SECONDS)

soak: build
	$(BUILD)/tests/unit/test_scp03_property 0 200000
	sh tests/keys/crash.sh $(BUILD)/tools/scpkit soak $(KS_SOAK_SECONDS) $(KS_SOAK_KILLS)
	sh tests/fleet/chaos.sh $(BUILD)/tools/scpkit $(FLEET_SOAK_DEVICES) 5 100000 7200

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(CLANG_BUILD) build-fuzz
