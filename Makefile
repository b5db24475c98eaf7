# dlgkit: one entry point (DESIGN.md section 2).
#   make            libdata, libeval (static) and the tools into build/
#   make test       deps + build, then the whole suite; last line "N passed, N failed"
#   make test SANITIZE=1   the same under ASan + UBSan (objects in build/san/)
#   make fuzz       every libFuzzer target for FUZZ_TIME seconds (clang)
#   make bench      benchmarks against the peers (prints ratios, never fails on speed)
#   make demo       the sample pipeline over samples/
#   make deps       installs what is missing (Debian packages, npm ci in tests/)
#   make install PREFIX=/usr/local
# Objects land in $(B)/obj, with -MMD -MP dependency files; quiet unless V=1.

PREFIX    ?= /usr/local
SANITIZE  ?= 0
FUZZ_TIME ?= 20
V         ?= 0

ifeq ($(SANITIZE),1)
B := build/san
else
B := build
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

CC      ?= cc
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation
INCS    := -Ilibdata -Ilibeval -Ilibeval/infer
OPT     ?= -O2 -g
CFLAGS  := $(CSTD) $(OPT) $(WARN) $(INCS) -MMD -MP $(EXTRA_CFLAGS)
LDLIBS  := -lpcre2-8 -licui18n -licuuc -licudata -lcjson -lxlsxwriter -lz -lm -lpthread

# Optional parts, found once per make invocation and said aloud.
HAVE_OPENMP := $(shell printf 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo yes || echo no)
HAVE_NVCC   := $(shell command -v nvcc >/dev/null 2>&1 && echo yes || echo no)
ifeq ($(HAVE_OPENMP),yes)
CFLAGS  += -fopenmp
LDFLAGS += -fopenmp
else
CFLAGS  += -Wno-unknown-pragmas
endif
ifeq ($(SANITIZE),1)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CFLAGS   += $(SANFLAGS)
LDFLAGS  += $(SANFLAGS)
endif

LIBDATA_SRC := $(wildcard libdata/*.c)
LIBEVAL_SRC := $(wildcard libeval/*.c) $(wildcard libeval/infer/*.c)
TOOL_SRC    := $(wildcard tools/*.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
TESTSUP_SRC := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

LIBDATA := $(B)/lib/libdata.a
LIBEVAL := $(B)/lib/libeval.a
TOOLS   := $(patsubst tools/%.c,$(B)/bin/%,$(TOOL_SRC))
UNITS   := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
LIBS    := $(LIBEVAL) $(LIBDATA)

.PHONY: all test deps demo bench fuzz install clean config
all: config $(TOOLS) $(UNITS)

config:
	@echo "dlgkit: cc=$(CC) openmp=$(HAVE_OPENMP) nvcc=$(HAVE_NVCC) sanitize=$(SANITIZE) build=$(B)"

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIBDATA): $(call obj,$(LIBDATA_SRC))
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR    $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBEVAL): $(call obj,$(LIBEVAL_SRC))
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR    $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/bin/%: $(B)/obj/tools/%.o $(LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) $< $(LIBS) $(LDLIBS) -o $@

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(call obj,$(TESTSUP_SRC)) $(LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) $< $(call obj,$(TESTSUP_SRC)) $(LIBS) $(LDLIBS) -o $@

# Recursive so that the build is configured after deps has installed compilers and libraries.
test:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory all
	@B=$(B) SANITIZE=$(SANITIZE) tests/run.sh

DEB_PKGS := build-essential libpcre2-dev libicu-dev libcjson-dev libxlsxwriter-dev zlib1g-dev \
            clang libclang-rt-14-dev unzip jq time
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm  >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 2; \
	fi
	@if [ ! -f tests/node_modules/.package-lock.json ] || [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; then \
	  echo "deps: npm ci in tests/"; (cd tests && npm ci --no-audit --no-fund --loglevel=error) || exit 2; fi

demo: all
	@samples/demo.sh $(B)/bin

bench: all
	@B=$(B) tests/bench/run.sh

# libFuzzer needs clang; the libraries are rebuilt for it in build/fuzz (no OpenMP there).
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_B      := build/fuzz
FUZZ_CFLAGS := $(CSTD) -O1 -g $(WARN) -Wno-unknown-warning-option -Wno-unknown-pragmas $(INCS) -MMD -MP \
               -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_LIBOBJ := $(patsubst %.c,$(FUZZ_B)/obj/%.o,$(LIBDATA_SRC) $(LIBEVAL_SRC))
FUZZERS     := $(patsubst tests/fuzz/%.c,$(FUZZ_B)/%,$(FUZZ_SRC))

$(FUZZ_B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC $<")
	$(Q)clang $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_B)/fuzz_%: $(FUZZ_B)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIBOBJ)
	@$(if $(Q),echo "  FUZZLD $@")
	$(Q)clang -fsanitize=fuzzer,address,undefined $^ $(LDLIBS) -o $@

fuzz:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run.sh $(FUZZ_B)

.PHONY: fuzz-build
fuzz-build: $(FUZZERS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/dlgkit/schemas
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 schemas/*.json $(DESTDIR)$(PREFIX)/share/dlgkit/schemas/

clean:
	rm -rf build

-include $(shell find $(B)/obj $(FUZZ_B)/obj -name '*.d' 2>/dev/null)
