# naoc — build, test and demo.  `make help` lists the targets.
#
# Everything is built out of tree in $(BUILD)/: the grammar's generated C in
# $(BUILD)/gen, objects beside their sources' relative paths, the libraries
# (libnaoc.a: compiler, libnaort.a: runtime, libnaosearch.a: search) and the
# programs. Sources are found by wildcard, so a new .c file needs no edit here:
# DIR/*_main.c is the main of a program, tests/unit/test_*.c is a unit test.

BUILD    ?= build
CC       ?= cc
PYTHON   ?= /usr/bin/python3
PREFIX   ?= /usr/local
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
SAN      ?=
WARN     := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wvla -fno-common
# The generated scanner and parser get a reduced set: flex/bison output is not ours.
GENWARN  := -std=c11 -Wall -Wno-unused-function -Wno-unused-parameter -Wno-sign-compare
BLAS_INC := $(shell pkg-config --cflags-only-I openblas 2>/dev/null)
CPPFLAGS += -I. -I$(BUILD)/gen $(BLAS_INC) -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -MMD -MP
LDLIBS   += -lopenblas -lz -ljpeg -lpng -lpthread -ldl -lm
ALLFLAGS  = $(CPPFLAGS) $(CFLAGS) $(SAN)

# ---------------------------------------------------------------- sources
mains        := $(wildcard */*_main.c)
naoc_src     := $(filter-out $(mains),$(wildcard compiler/*.c))
naort_src    := $(filter-out $(mains),$(wildcard runtime/*.c))
search_src   := $(filter-out $(mains),$(wildcard search/*.c))
unit_src     := $(wildcard tests/unit/test_*.c)
tool_src     := $(wildcard tests/tools/*.c)
test_support := $(filter-out $(unit_src),$(wildcard tests/unit/*.c))

have_grammar := $(wildcard grammar/nao.y)
gen_c    := $(if $(have_grammar),$(BUILD)/gen/nao.tab.c $(BUILD)/gen/nao.lex.c)
gen_h    := $(if $(have_grammar),$(BUILD)/gen/nao.tab.h $(BUILD)/gen/nao.lex.h)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
libnaoc     := $(BUILD)/libnaoc.a
libnaort    := $(BUILD)/libnaort.a
libnaosearch:= $(BUILD)/libnaosearch.a
libs        := $(libnaosearch) $(libnaort) $(libnaoc)

# A program per main: compiler/naoc_main.c -> build/naoc, runtime/nao_train_main.c -> build/nao-train.
prog_name = $(subst _,-,$(patsubst %_main.c,%,$(notdir $(1))))
programs  := $(foreach m,$(mains),$(BUILD)/$(call prog_name,$(m)))
unit_bins := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(unit_src))
# Helper programs the tests call (not tests themselves): tests/tools/x.c -> build/tests/tools/x
tool_bins := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(tool_src))

# Objects are never intermediate: keep them so rebuilds are incremental.
.SECONDARY:

# ---------------------------------------------------------------- targets
.PHONY: all deps deps-build test check unit golden demo sanitize fuzz generated \
        check-generated install clean help trainer
all: deps-build $(programs)

help:
	@echo "make            build the programs into $(BUILD)/ (installs missing Debian packages as root)"
	@echo "make test       build and run the whole test suite (what CI runs)"
	@echo "make demo       search, compile and train on Fashion-MNIST"
	@echo "make sanitize   the test suite under ASan and UBSan, in build-san/"
	@echo "make fuzz       run the libFuzzer harness on the front end (FUZZ_SECONDS=60)"
	@echo "make golden     re-bless the golden compiler tests after a reviewed change"
	@echo "make generated  rewrite generated/ (the paper's networks and their net.cu)"
	@echo "make install    install the programs under PREFIX=$(PREFIX)"
	@echo "make trainer NET=net.cu [NAO=net.nao] [TRAINER=path]   a trainer with the network built in"
	@echo "make deps       install the Debian packages the build and the tests need"

deps:
	@tools/deps.sh test
deps-build:
	@tools/deps.sh build

# ---------------------------------------------------------------- grammar
$(BUILD)/gen/nao.tab.c $(BUILD)/gen/nao.tab.h &: grammar/nao.y
	@mkdir -p $(@D)
	bison -Wall -Werror --defines=$(BUILD)/gen/nao.tab.h -o $(BUILD)/gen/nao.tab.c $<
$(BUILD)/gen/nao.lex.c $(BUILD)/gen/nao.lex.h &: grammar/nao.l $(BUILD)/gen/nao.tab.h
	@mkdir -p $(@D)
	flex --header-file=$(BUILD)/gen/nao.lex.h -o $(BUILD)/gen/nao.lex.c $<
$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(@D)
	$(CC) $(GENWARN) $(ALLFLAGS) -c $< -o $@

# ---------------------------------------------------------------- objects and libraries
# Every object waits for the generated headers, so compiler sources may include them.
$(BUILD)/obj/%.o: %.c | $(gen_h)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(ALLFLAGS) -c $< -o $@

$(libnaoc): $(call obj,$(naoc_src)) $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(gen_c))
$(libnaort): $(call obj,$(naort_src))
$(libnaosearch): $(call obj,$(search_src))
$(libs):
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

define program_rule
$(BUILD)/$(call prog_name,$(1)): $(call obj,$(1)) $(libs)
	$$(CC) $$(CFLAGS) $$(SAN) $$< $(libs) $$(LDFLAGS) $$(LDLIBS) -o $$@
endef
$(foreach m,$(mains),$(eval $(call program_rule,$(m))))

$(BUILD)/tests/tools/%: tests/tools/%.c $(call obj,$(test_support)) $(libs)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(ALLFLAGS) $< $(call obj,$(test_support)) $(libs) $(LDFLAGS) $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(call obj,$(test_support)) $(libs)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(ALLFLAGS) $< $(call obj,$(test_support)) $(libs) $(LDFLAGS) $(LDLIBS) -o $@

# ---------------------------------------------------------------- tests
test: deps $(programs) $(unit_bins) $(tool_bins)
	BUILD=$(BUILD) PYTHON=$(PYTHON) tests/run.sh

check: test

unit: $(programs) $(unit_bins) $(tool_bins)
	BUILD=$(BUILD) PYTHON=$(PYTHON) tests/run.sh unit

golden: $(programs)
	BUILD=$(BUILD) tests/golden/run.sh --bless

sanitize:
	$(MAKE) BUILD=build-san OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

FUZZ_SECONDS ?= 60
fuzz:
	BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh

generated: $(programs)
	BUILD=$(BUILD) tools/generated.sh write
check-generated: $(programs)
	BUILD=$(BUILD) tools/generated.sh check

demo: deps $(programs)
	BUILD=$(BUILD) tools/demo.sh

# A standalone trainer from net.cu (tools/trainer.sh, docs/cuda-runtime.md).
trainer: $(libs) $(BUILD)/obj/runtime/nao_train_main.o
	BUILD=$(BUILD) CC="$(CC)" WARN="$(WARN)" CFLAGS="$(CFLAGS) $(SAN)" CPPFLAGS="$(CPPFLAGS)" \
	  LDFLAGS="$(LDFLAGS)" LDLIBS="$(LDLIBS)" tools/trainer.sh "$(NET)" "$(NAO)" "$(TRAINER)"

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(programs) $(DESTDIR)$(PREFIX)/bin

clean:
	rm -rf $(BUILD) build-san build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
