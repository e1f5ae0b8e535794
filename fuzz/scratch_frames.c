/* The core's scratch slots (csrc/buf.c) against the C stack: a call made
 * inside a holder (deeper on the stack) gets a buffer of its own; a call
 * at the holder's depth or above, once the holder is gone without
 * releasing (an error carried it off), takes the slot back, whatever
 * depth the holder had. Exits non-zero on a wrong answer. `make test`
 * runs it (scripts/test.sh).
 *
 *   cc -O2 -g -fsanitize=address,undefined -D_GNU_SOURCE -Icsrc $(pkg-config --cflags lua5.4) \
 *      fuzz/scratch_frames.c csrc/buf.c -o /tmp/scratch_frames && /tmp/scratch_frames
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core.h"

static luapay_ctx ctx;
static int failures;

/* buf.c's luapay_scratch looks the context up in a Lua state: not here. */
luapay_ctx *luapay_ctx_get(lua_State *L) {
    (void)L;
    return &ctx;
}

static void expect(int ok, const char *what) {
    if (!ok) {
        printf("FAIL: %s\n", what);
        failures++;
    }
}

#define NOINLINE __attribute__((noinline))
static volatile int sink; /* keeps each level a frame of its own */

/* Takes slot 0 `depth` calls below here; 1 if the slot's buffer came back,
 * and keeps it held (the holder "raises": no release). */
static NOINLINE int take_at(int depth, luapay_buf **got) {
    if (depth > 0) {
        int r = take_at(depth - 1, got);
        sink += r;
        return r;
    }
    *got = luapay_scratch_in(&ctx, 0);
    return *got == &ctx.scratch[0];
}

/* A holder at `depth` that, while it holds slot 0, runs a call `inner`
 * levels deeper (a finalizer in one of its allocations); then releases. */
static NOINLINE void holder_with_inner(int depth, int inner) {
    if (depth > 0) {
        holder_with_inner(depth - 1, inner);
        sink++;
        return;
    }
    luapay_buf *mine = luapay_scratch_in(&ctx, 0);
    expect(mine == &ctx.scratch[0], "a holder with the slot free gets the slot");
    luapay_buf_add(mine, "holder", 6);
    luapay_buf *inside = NULL;
    int shared = take_at(inner, &inside);
    expect(!shared, "a call inside the holder gets a buffer of its own");
    luapay_buf_add(inside, "inner", 5);
    luapay_scratch_done(inside);
    expect(mine->len == 6 && memcmp(mine->data, "holder", 6) == 0, "the holder's bytes are its own");
    luapay_scratch_done(mine);
}

/* A slot a helper takes and returns to its caller still held, as
 * ecommpay.c's canonical() does: its mark is the helper's frame, which is
 * where the caller's other callees stand. A finalizer reaches luapay
 * through one of them (an allocation) and below it: `inner` >= 1. */
static NOINLINE luapay_buf *take_and_return(void) {
    luapay_buf *b = luapay_scratch_in(&ctx, 0);
    sink++;
    return b;
}

static NOINLINE void holder_of_returned(int inner) {
    luapay_buf *mine = take_and_return();
    expect(mine == &ctx.scratch[0], "a helper with the slot free gets the slot");
    luapay_buf_add(mine, "holder", 6);
    luapay_buf *inside = NULL;
    expect(!take_at(inner, &inside), "a call inside the helper's caller gets a buffer of its own");
    luapay_scratch_done(inside);
    expect(mine->len == 6 && memcmp(mine->data, "holder", 6) == 0, "the caller's bytes are its own");
    luapay_scratch_done(mine);
}

/* A holder at `depth` inside which a call `inner` levels deeper takes its
 * own buffer and is carried off with it (an error: no release); then a
 * call `later` levels below the holder's caller takes the slot. */
static NOINLINE void own_carried_off(int depth, int inner, int later) {
    if (depth > 0) {
        own_carried_off(depth - 1, inner, later);
        sink++;
        return;
    }
    luapay_buf *mine = luapay_scratch_in(&ctx, 0), *lost = NULL, *b = NULL;
    expect(!take_at(inner, &lost), "a call inside the holder gets a buffer of its own");
    luapay_buf_add(lost, "lost", 4);
    expect(ctx.owns != NULL, "an own buffer not yet done is on the context's list");
    if (inner > later) { /* above the gone call, still inside the holder */
        expect(!take_at(later, &b), "a call inside the holder still gets its own");
        expect(ctx.owns != NULL && ctx.owns->next == NULL, "the gone call's own buffer freed, this one listed");
        luapay_scratch_done(b);
    }
    luapay_scratch_done(mine);
    expect(take_at(0, &b), "a call above the holder takes the slot");
    expect(ctx.owns == NULL, "and the gone call's own buffer is freed");
    luapay_scratch_done(b);
}

/* Inside slot 0's holder: takes its own buffer of slot 0, runs a call
 * `deeper` levels below it that takes slot 0 too, and takes slot 2; its
 * own buffer stays its own throughout. Returns it still held. */
static NOINLINE luapay_buf *owner(int deeper) {
    luapay_buf *alive = luapay_scratch_in(&ctx, 0), *b = NULL;
    luapay_buf_add(alive, "alive", 5);
    expect(!take_at(deeper, &b), "a call inside an own buffer's owner: a buffer of its own");
    luapay_scratch_done(b);
    expect(alive->len == 5 && memcmp(alive->data, "alive", 5) == 0, "a take inside an own buffer's owner leaves it");
    luapay_buf *other = luapay_scratch_in(&ctx, 2);
    expect(other == &ctx.scratch[2], "another slot: the slot");
    luapay_scratch_done(other);
    expect(ctx.owns != NULL && &ctx.owns->b == alive, "the owner's own buffer is still listed");
    return alive;
}

/* The owner above is carried off with its own buffer: a take of another
 * slot leaves the buffer listed; a take of slot 0 above it frees it. */
static NOINLINE void own_kept_while_alive(int deeper) {
    luapay_buf *mine = luapay_scratch_in(&ctx, 0);
    expect(owner(deeper) != mine, "inside the holder: a buffer of its own");
    luapay_scratch_done(mine);
    luapay_buf *b = luapay_scratch_in(&ctx, 2);
    luapay_scratch_done(b);
    expect(ctx.owns != NULL, "a take of another slot frees no own buffer of slot 0");
    b = luapay_scratch_in(&ctx, 0);
    expect(b == &ctx.scratch[0] && ctx.owns == NULL, "a take of slot 0 above it frees it");
    luapay_scratch_done(b);
}

int main(void) {
    for (int depth = 0; depth < 6; depth++) {
        for (int inner = 0; inner < 4; inner++) holder_with_inner(depth, inner);
        expect(ctx.scratch[0].held == LUAPAY_HELD_NOT, "released after use");
    }
    for (int inner = 1; inner < 4; inner++) holder_of_returned(inner);
    /* holders carried off at one depth; later calls at other depths */
    for (int dead = 0; dead < 6; dead++) {
        for (int later = 0; later < 6; later++) {
            luapay_buf *b = NULL;
            expect(take_at(dead, &b), "the slot, when free");
            luapay_buf_add(b, "lost", 4); /* never released: the holder is gone */
            int back = take_at(later, &b);
            if (later <= dead) {
                expect(back, "a call at the gone holder's depth or above takes the slot back");
                expect(b->len == 0, "a slot taken back is empty");
            } else if (!back) {
                luapay_scratch_done(b); /* deeper: its own, as if inside */
                expect(take_at(0, &b), "then a call above takes it back");
            }
            luapay_scratch_done(b);
        }
    }
    for (int depth = 0; depth < 4; depth++)
        for (int inner = 0; inner < 4; inner++)
            for (int later = 0; later < 4; later++) own_carried_off(depth, inner, later);
    for (int deeper = 0; deeper < 4; deeper++) own_kept_while_alive(deeper);
    /* one carried off and never taken again: the context's end frees it */
    luapay_buf *lost = NULL;
    expect(luapay_scratch_in(&ctx, 0) == &ctx.scratch[0], "the slot, when free");
    int shared = take_at(1, &lost);
    expect(!shared && ctx.owns != NULL, "an own buffer, carried off");
    luapay_buf_add(lost, "lost", 4);
    luapay_scratch_release(&ctx); /* LeakSanitizer: nothing left */
    expect(ctx.owns == NULL, "the context's end frees the own buffers left");
    if (failures) return 1;
    printf("scratch_frames: ok\n");
    return 0;
}
