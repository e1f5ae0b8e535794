/* A growable byte buffer for C code that builds long strings while it also
 * pushes Lua values (luaL_Buffer owns the stack top, so it cannot). A buffer
 * can live in a userdata ("boxed") so that a Lua error frees it via __gc. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define BUF_MT "luapay.buf"

int luapay_buf_reserve(luapay_buf *b, size_t n) {
    if (b->oom) return 0;
    if (n <= b->cap - b->len) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return 0;
        }
        cap *= 2;
    }
    char *d = (char *)realloc(b->data, cap);
    if (d == NULL) {
        b->oom = 1;
        return 0;
    }
    b->data = d;
    b->cap = cap;
    return 1;
}

int luapay_buf_add_grow(luapay_buf *b, const void *p, size_t n) {
    if (!luapay_buf_reserve(b, n)) return 0;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 1;
}

void luapay_buf_free(luapay_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int buf_gc(lua_State *L) {
    luapay_buf_free((luapay_buf *)lua_touserdata(L, 1));
    return 0;
}

luapay_buf *luapay_buf_box(lua_State *L) {
    luapay_buf *b = (luapay_buf *)lua_newuserdata(L, sizeof *b);
    memset(b, 0, sizeof *b);
    if (luaL_newmetatable(L, BUF_MT)) {
        lua_pushcfunction(L, buf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

#define SCRATCH_KEEP (64u << 10) /* larger ones go back to the system */

/* Whether the C stack grows down (it does on every platform Debian builds
 * for but hppa): a frame called from this one lies below it. */
static __attribute__((noinline)) int below(uintptr_t caller) {
    return (uintptr_t)__builtin_frame_address(0) < caller;
}
static int stack_grows_down(void) {
    static int down = -1; /* the same answer for every thread that writes it */
    if (down < 0) down = below((uintptr_t)__builtin_frame_address(0));
    return down;
}

static void own_free(luapay_own *own) {
    luapay_own **at = &own->ctx->owns;
    while (*at != own) at = &(*at)->next;
    *at = own->next;
    free(own->b.data);
    free(own);
}

/* Whether a take at frame finds the call that marked mark gone: a call
 * at that frame or above it is not inside it. */
static int gone(uintptr_t mark, uintptr_t frame) {
    return stack_grows_down() ? frame >= mark : frame <= mark;
}

static __attribute__((noinline)) void free_gone_owns(luapay_ctx *ctx, int slot, uintptr_t taker_frame) {
    for (luapay_own *own = ctx->owns, *next; own != NULL; own = next) {
        next = own->next;
        if (own->slot == slot && gone(own->b.holder, taker_frame)) own_free(own);
    }
}

/* A held slot is in use when this call runs inside its holder (a
 * finalizer the collector ran during one of the holder's allocations):
 * below the frame the holder took it in (core.h). At that frame or above
 * it, the holder is gone: an error carried it off while it held the slot.
 * (Real frames, __builtin_frame_address: ASan may move locals off the
 * stack, never frames.) */
luapay_buf *luapay_scratch_take(luapay_ctx *ctx, int slot, uintptr_t taker_frame) {
    if (ctx->owns != NULL) free_gone_owns(ctx, slot, taker_frame);
    luapay_buf *b = &ctx->scratch[slot];
    if (b->held && !gone(b->holder, taker_frame)) {
        luapay_own *own = (luapay_own *)calloc(1, sizeof *own);
        if (own == NULL) {
            ctx->no_scratch = (luapay_buf){NULL, 0, 0, 1, LUAPAY_HELD_NONE, 0};
            return &ctx->no_scratch;
        }
        own->b.held = LUAPAY_HELD_OWN;
        own->b.holder = taker_frame;
        own->ctx = ctx;
        own->slot = slot;
        own->next = ctx->owns;
        ctx->owns = own;
        return &own->b;
    }
    b->len = 0;
    if (b->oom || b->cap > SCRATCH_KEEP) luapay_buf_free(b); /* one left held may have grown */
    b->held = LUAPAY_HELD_SLOT;
    b->holder = taker_frame;
    return b;
}

void luapay_scratch_done(luapay_buf *b) {
    if (b->held == LUAPAY_HELD_OWN) {
        own_free((luapay_own *)(void *)b);
        return;
    }
    if (b->held == LUAPAY_HELD_NONE) return;
    if (b->cap > SCRATCH_KEEP || b->oom) luapay_buf_free(b);
    b->len = 0;
    b->held = LUAPAY_HELD_NOT;
}

void luapay_scratch_release(luapay_ctx *ctx) {
    for (int i = 0; i < LUAPAY_NSCRATCH; i++) luapay_buf_free(&ctx->scratch[i]);
    while (ctx->owns != NULL) own_free(ctx->owns);
}
