# luapay: build, test, bench, demo, install.
#   make                      luapay.core for Lua 5.4   -> build/lua5.4/luapay/core.so
#   make LUA=luajit           the same source for LuaJIT -> build/luajit/luapay/core.so
#   make SANITIZE=1           with ASan + UBSan          -> build/lua5.4-asan/luapay/core.so
#   make test | bench | demo | install [PREFIX=/usr/local DESTDIR=]
#   make bench BENCH_MODE=icount   instructions per operation under callgrind
#                             (luapay vs plain C doing only the cryptography)
#   make lint                 luacheck over the tree (.luacheckrc), zero warnings wanted
#   make doc                  the API reference (ldoc, config.ld) -> build/doc/index.html

LUA      ?= lua5.4
CC       ?= cc
PREFIX   ?= /usr/local
SANITIZE ?=

ifeq ($(LUA),luajit)
  LUA_PC := luajit
  LUA_V  := 5.1
else ifeq ($(LUA),lua5.4)
  LUA_PC := lua5.4
  LUA_V  := 5.4
else
  $(error LUA must be lua5.4 or luajit)
endif

PKG_CONFIG ?= pkg-config
DEPS_PC    := libcrypto libcurl

BUILD_TAG ?= $(LUA)$(if $(SANITIZE),-asan)
BUILD     := build/$(BUILD_TAG)
CORE      := $(BUILD)/luapay/core.so

SRCS := $(wildcard csrc/*.c)
HDRS := $(wildcard csrc/*.h)
OBJS := $(SRCS:csrc/%.c=$(BUILD)/obj/%.o)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
SAN     := -fsanitize=address,undefined
OPT     := $(if $(SANITIZE),-O1 -g -fno-omit-frame-pointer $(SAN) -fno-sanitize-recover=undefined,-O2)
CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(OPT) $(WARN) \
           $(shell $(PKG_CONFIG) --cflags $(LUA_PC) $(DEPS_PC) 2>/dev/null)
LDFLAGS ?=
LDFLAGS += -shared $(if $(SANITIZE),$(SAN))
LIBS    := $(shell $(PKG_CONFIG) --libs $(DEPS_PC) 2>/dev/null || echo -lcrypto -lcurl)

LUA_CMOD := $(PREFIX)/lib/lua/$(LUA_V)
LUA_LMOD := $(PREFIX)/share/lua/$(LUA_V)

.PHONY: all deps test lint doc bench demo install uninstall clean

all: $(CORE)

# Installs missing Debian packages; quick and silent when all are present.
deps:
	@scripts/setup.sh

$(BUILD)/obj/%.o: csrc/%.c $(HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(CORE): $(OBJS)
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

LUA_SOURCES := $(shell find lua/luapay -name '*.lua' | sort)

install: $(CORE)
	install -d $(DESTDIR)$(LUA_CMOD)/luapay
	install -m 755 $(CORE) $(DESTDIR)$(LUA_CMOD)/luapay/core.so
	for f in $(LUA_SOURCES); do install -D -m 644 $$f $(DESTDIR)$(LUA_LMOD)/$${f#lua/}; done
	install -D -m 755 bin/luapay $(DESTDIR)$(PREFIX)/bin/luapay

uninstall:
	rm -rf $(DESTDIR)$(LUA_CMOD)/luapay $(DESTDIR)$(LUA_LMOD)/luapay $(DESTDIR)$(PREFIX)/bin/luapay

clean:
	rm -rf build
