# The two commands: `make demo` and `make test`. Both install what is missing, then build.
BUILD ?= build
GUEST := $(BUILD)/guest
# -g1: line tables (backtraces name functions, files and lines) without full debug info, which
# costs a quarter of the optimised build's compile time. Use CMAKE_FLAGS=... to debug with -g.
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
JOBS ?= $(shell nproc)

.PHONY: all setup build binaries guest fuzz test unit e2e demo bench clean format

all: build

setup:
	@bash scripts/setup.sh

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: setup $(BUILD)/build.ninja
	ninja -C $(BUILD) -j $(JOBS)

# Just the daemon and the CLI.
binaries: setup $(BUILD)/build.ninja
	ninja -C $(BUILD) -j $(JOBS) stratusd stratus

# The tiny guest image every VM boots (cached; rebuilt when guest/ changes).
guest: setup
	bash guest/build-tiny-image.sh $(GUEST)

# The libFuzzer target (clang, ASan + UBSan) in its own tree; `make test` runs it for a while.
FUZZ_BUILD := $(BUILD)/fuzz
fuzz: setup
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DSTRATUS_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -g" >/dev/null
	ninja -C $(FUZZ_BUILD) -j $(JOBS) api_request_fuzz

test: build guest fuzz
	cd $(BUILD) && STRATUS_GUEST_DIR=$(abspath $(GUEST)) ctest --output-on-failure --timeout 900

unit: build
	cd $(BUILD) && ctest -L unit --output-on-failure

e2e: build guest
	cd $(BUILD) && STRATUS_GUEST_DIR=$(abspath $(GUEST)) ctest -L e2e --output-on-failure

demo: binaries guest
	STRATUS_BUILD=$(abspath $(BUILD)) STRATUS_GUEST_DIR=$(abspath $(GUEST)) bash scripts/demo.sh

bench: build guest
	ninja -C $(BUILD) -j $(JOBS) benches
	STRATUS_BUILD=$(abspath $(BUILD)) STRATUS_GUEST_DIR=$(abspath $(GUEST)) bash bench/run.sh

format:
	find src tests bench -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD)
