# A thin wrapper over meson for the two commands README.md opens with.
# meson.build is the real build; these targets install what is missing,
# configure the build directories and run.

.PHONY: all deps test bench clean

all:
	tools/install-deps
	@[ -f build/release/build.ninja ] || meson setup build/release -Dbuildtype=release
	ninja -C build/release

deps:
	tools/install-deps test bench

# Every test, in a gcc, an ASan+UBSan, a clang -O2 and a ucontext build.
test:
	tools/install-deps test
	tools/run-tests

# Every benchmark in its quick mode, on a release build.
bench:
	tools/install-deps bench
	tools/run-bench

clean:
	rm -rf build
