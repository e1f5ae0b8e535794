# luapay: build, test, bench, demo, install.
#   make                      luapay.core for Lua 5.4   -> build/lua5.4/luapay/core.so
#   make LUA=luajit           the same source for LuaJIT -> build/luajit/luapay/core.so
#   make LUA=lua5.1 (5.2, 5.3) the same source for PUC Lua -> build/lua5.1/luapay/core.so
#   make SANITIZE=1           with ASan + UBSan          -> build/lua5.4-asan/luapay/core.so
#   make test | bench | demo | install [PREFIX=/usr/local DESTDIR=]
#   make bench BENCH_MODE=icount   instructions per operation under callgrind
#                             (luapay vs plain C doing only the cryptography)
#   make lint                 luacheck over the tree (.luacheckrc), zero warnings wanted
#   make doc                  the API reference (ldoc, config.ld) -> build/doc/index.html
#   make fuzz [FUZZ_SECONDS=600] [FUZZ_TARGETS="json_decode ..."]
#                             libFuzzer (clang, ASan + UBSan) on every target in fuzz/targets/,
#                             FUZZ_SECONDS each; new inputs in build/fuzz/work, crashes in build/fuzz/crashes
#   make fuzz-ci              the same for FUZZ_CI_SECONDS (20) each: what `make test` runs

LUA      ?= lua5.4
CC       ?= cc
PREFIX   ?= /usr/local
SANITIZE ?=
# HMAC=evp: HMAC through EVP digest contexts alone, as an OpenSSL built
# without its deprecated digest functions, or a FIPS configuration, gets it
# (csrc/hash.c); scripts/test.sh runs the Lua 5.1 suite so.
HMAC     ?=

# Lua 5.1, 5.2 and 5.3 build the same source too (csrc/compat.h).
ifeq ($(LUA),luajit)
  LUA_PC := luajit
  LUA_V  := 5.1
else ifneq ($(filter lua5.1 lua5.2 lua5.3 lua5.4,$(LUA)),)
  LUA_PC := $(LUA)
  LUA_V  := $(LUA:lua%=%)
else
  $(error LUA must be lua5.1, lua5.2, lua5.3, lua5.4 or luajit)
endif

PKG_CONFIG ?= pkg-config
DEPS_PC    := libcrypto libcurl

BUILD_TAG ?= $(LUA)$(if $(SANITIZE),-asan)$(if $(HMAC),-hmac-$(HMAC))
BUILD     := build/$(BUILD_TAG)
CORE      := $(BUILD)/luapay/core.so

SRCS := $(wildcard csrc/*.c)
HDRS := $(wildcard csrc/*.h)
OBJS := $(SRCS:csrc/%.c=$(BUILD)/obj/%.o)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
SAN     := -fsanitize=address,undefined
OPT     := $(if $(SANITIZE),-O1 -g -fno-omit-frame-pointer $(SAN) -fno-sanitize-recover=undefined,-O2)
CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(OPT) $(WARN) $(if $(filter evp,$(HMAC)),-DLUAPAY_HMAC_EVP) \
           $(shell $(PKG_CONFIG) --cflags $(LUA_PC) $(DEPS_PC) 2>/dev/null)
LDFLAGS ?=
LDFLAGS += -shared $(if $(SANITIZE),$(SAN))
LIBS    := $(shell $(PKG_CONFIG) --libs $(DEPS_PC) 2>/dev/null || echo -lcrypto -lcurl)

LUA_CMOD := $(PREFIX)/lib/lua/$(LUA_V)
LUA_LMOD := $(PREFIX)/share/lua/$(LUA_V)

.PHONY: all deps test lint doc bench demo install uninstall clean fuzz fuzz-ci fuzz-build

all: $(CORE)

# Installs missing Debian packages; quick and silent when all are present.
deps:
	@scripts/setup.sh

# The compiler and flags the objects were built with, rewritten only when
# they change: a build into the same directory with others (HMAC=evp,
# BUILD_TAG=lua5.1 over a plain lua5.1 build, another CC) rebuilds them.
FLAGS_STAMP := $(BUILD)/obj/flags
$(FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(CC) $(CFLAGS) $(LDFLAGS) $(LIBS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(LDFLAGS) $(LIBS)' > $@
.PHONY: FORCE
FORCE:

$(BUILD)/obj/%.o: csrc/%.c $(HDRS) $(FLAGS_STAMP) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(CORE): $(OBJS) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LIBS)

test: deps
	@scripts/test.sh

# Exits non-zero on any warning; `make test` counts it as one check.
lint: deps
	@luacheck --no-color --codes -q .

# Any ldoc warning (a doc comment it cannot place) fails the build.
doc: deps
	@rm -rf build/doc
	@ldoc --fatalwarnings -q .
	@echo "API reference: build/doc/index.html"

BENCH_MODE ?= wall
bench: deps
	@$(if $(filter icount,$(BENCH_MODE)),bench/icount.sh,bench/run.sh)

# A merchant's day against the sandbox (examples/merchant_day.lua). The script
# runs on Lua 5.4; the sandbox's nginx loads the LuaJIT build: both are built.
demo: all
	@$(MAKE) --no-print-directory LUA=lua5.4 SANITIZE= BUILD_TAG=lua5.4 all
	@$(MAKE) --no-print-directory LUA=luajit SANITIZE= BUILD_TAG=luajit all
	@LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 examples/merchant_day.lua

# Fuzzing: csrc/ built with clang for libFuzzer, linked with fuzz/driver.c
# into one binary per target (fuzz/targets/<name>.lua); scripts/fuzz.sh runs them.
FUZZ_TARGETS    ?= $(sort $(basename $(notdir $(wildcard fuzz/targets/*.lua))))
FUZZ_SECONDS    ?= 600
FUZZ_CI_SECONDS ?= 20
FUZZ_CC         ?= clang
FUZZ_SAN        := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS     := -std=c11 -D_GNU_SOURCE $(FUZZ_SAN) $(WARN) \
                   $(shell $(PKG_CONFIG) --cflags lua5.4 $(DEPS_PC) 2>/dev/null)
FUZZ_OBJS       := $(SRCS:csrc/%.c=build/fuzz/obj/%.o)

build/fuzz/obj/%.o: csrc/%.c $(HDRS) | deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/bin/%: fuzz/driver.c $(FUZZ_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -DFUZZ_TARGET='"$*"' -o $@ fuzz/driver.c $(FUZZ_OBJS) \
	    $(shell $(PKG_CONFIG) --libs lua5.4 2>/dev/null || echo -llua5.4) $(LIBS) -lpthread -lm

fuzz-build: $(FUZZ_TARGETS:%=build/fuzz/bin/%)

fuzz: fuzz-build
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-ci: fuzz-build
	@scripts/fuzz.sh $(FUZZ_CI_SECONDS) $(FUZZ_TARGETS)

LUA_SOURCES := $(shell find lua/luapay -name '*.lua' | sort)

install: $(CORE)
	install -d $(DESTDIR)$(LUA_CMOD)/luapay
	install -m 755 $(CORE) $(DESTDIR)$(LUA_CMOD)/luapay/core.so
	for f in $(LUA_SOURCES); do install -D -m 644 $$f $(DESTDIR)$(LUA_LMOD)/$${f#lua/}; done
	install -D -m 755 bin/luapay $(DESTDIR)$(PREFIX)/bin/luapay
ifneq ($(LUA),luajit)
	@# the sandbox's nginx runs LuaJIT: its core, where the rockspec puts it too
	@$(MAKE) --no-print-directory LUA=luajit SANITIZE= BUILD_TAG=luajit all
	install -D -m 755 build/luajit/luapay/core.so $(DESTDIR)$(LUA_CMOD)/luapay/luajit/luapay/core.so
endif

uninstall:
	rm -rf $(DESTDIR)$(LUA_CMOD)/luapay $(DESTDIR)$(LUA_LMOD)/luapay $(DESTDIR)$(PREFIX)/bin/luapay

clean:
	rm -rf build
