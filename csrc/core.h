/* Internal interface between the files of luapay.core. Each file owns one job
 * and exports a luaL_Reg list that core.c registers with the shared context
 * as upvalue 1. */
#ifndef LUAPAY_CORE_H
#define LUAPAY_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <openssl/evp.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "compat.h"

#define LUAPAY_CORE_VERSION "0.1.0"
#define LUAPAY_EXPORT __attribute__((visibility("default")))
/* 2^53: below it every integer is exact as a double (a Lua number in 5.1 and LuaJIT). */
#define LUAPAY_TWO_POW_53 9007199254740992.0

enum luapay_alg { LUAPAY_SHA1, LUAPAY_SHA256, LUAPAY_SHA512, LUAPAY_NALGS };
enum luapay_enc { LUAPAY_RAW, LUAPAY_HEX, LUAPAY_HEX_UPPER, LUAPAY_BASE64 };

/* A growable byte buffer (buf.c). add returns 0 and sets oom on failure;
 * later adds are then no-ops, so callers check oom once at the end. */
typedef struct {
    char *data;
    size_t len, cap;
    int oom;
    int held; /* scratch buffers (luapay_scratch_in): see LUAPAY_HELD_* */
    uintptr_t holder; /* a held slot: the C stack frame it was taken in (buf.c) */
} luapay_buf;
int luapay_buf_add_grow(luapay_buf *b, const void *p, size_t n);
/* Inline: canonical strings and JSON add many short pieces. */
static inline int luapay_buf_add(luapay_buf *b, const void *p, size_t n) {
    if (b->oom || n > b->cap - b->len) return luapay_buf_add_grow(b, p, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 1;
}
/* Room for n more bytes (data + len .. + n writable); 0 and oom if not. */
int luapay_buf_reserve(luapay_buf *b, size_t n);
void luapay_buf_free(luapay_buf *b);
luapay_buf *luapay_buf_box(lua_State *L); /* pushes a userdata that frees it on __gc */

/* The context's scratch buffers (luapay_scratch, below), one per use. */
enum {
    LUAPAY_SCRATCH_CANON_KEY,
    LUAPAY_SCRATCH_CANON_DATA,
    LUAPAY_SCRATCH_CANON_ENTRIES,
    LUAPAY_SCRATCH_CANON_OUT,
    LUAPAY_SCRATCH_CANON_MEMBERS,
    LUAPAY_SCRATCH_CANON_TMP,
    LUAPAY_SCRATCH_JSON,
    LUAPAY_SCRATCH_JSON_KEYS,
    LUAPAY_SCRATCH_JSON_DECODE,
    LUAPAY_SCRATCH_FORM,
    LUAPAY_SCRATCH_HEADER_LINES,
    LUAPAY_NSCRATCH
};

/* Keyed HMAC states, most recently used first: a client signs every call
 * with the same secret, and keying (two digest blocks) costs a third of
 * HMAC-SHA512 over a short message. A copy of each key is kept to compare
 * (cleansed when it leaves); it is per lua_State, like the rest. The states
 * have hashed the key's inner and outer pad blocks (RFC 2104) and are
 * copied per call: the digest's own structs (raw, hash.c), or under a FIPS
 * configuration (and an OpenSSL without them) digest contexts copied into
 * ctx->hmac_work, as OpenSSL's HMAC does. */
#define LUAPAY_HMAC_CACHE 8
struct luapay_raw_states; /* hash.c's */
typedef struct {
    enum luapay_alg alg;
    size_t klen;
    unsigned char *key;             /* NULL: a free slot */
    struct luapay_raw_states *raw;  /* the digest's structs, or NULL: inner and outer */
    EVP_MD_CTX *inner, *outer;
} luapay_hmac_slot;

/* Strings of 1 to LUAPAY_SHORT bytes the JSON reader pushed lately, each
 * known by its length and two words that cover its bytes (json_decode.c);
 * the Lua strings themselves sit in a table of the registry (strings_ref). */
#define LUAPAY_SHORT 16
#define LUAPAY_SHORTS 256
typedef struct {
    uint64_t a, b;
    size_t n; /* 0: a free slot */
} luapay_short;

/* A call's own buffer (it runs inside its slot's holder), on the context's
 * list until done. One an error carried off is freed by the next take of
 * its slot at or above its frame, by the rule that takes a held slot back. */
typedef struct luapay_own {
    luapay_buf b; /* first: what the call is handed */
    struct luapay_own *next;
    struct luapay_ctx *ctx;
    int slot;
} luapay_own;

/* Per-lua_State context, a userdata upvalue (no global mutable state): the
 * digests and the HMAC implementation are fetched once, because fetching by
 * name on every call costs more than hashing a short message. */
typedef struct luapay_ctx {
    EVP_MD *md[LUAPAY_NALGS];
    EVP_MD_CTX *hmac_work; /* a keyed state's copy, hashing one message */
    luapay_hmac_slot hmac_cache[LUAPAY_HMAC_CACHE];
    luapay_buf scratch[LUAPAY_NSCRATCH];
    luapay_buf no_scratch; /* out of memory, handed out when a call's own buffer cannot be had */
    luapay_own *owns; /* the calls' own buffers not yet done (buf.c) */
    int strings_ref; /* 0 until the JSON reader makes the table */
    luapay_short strings[LUAPAY_SHORTS];
} luapay_ctx;

/* Scratch buffers kept between calls (buf.c), so a canonical string or a
 * JSON text does not allocate and grow three buffers per call. Only for C
 * functions that never call back into Lua while they hold one (no
 * metamethods, no callbacks). A finalizer still can: the collector runs
 * __gc inside any allocation, and one may call luapay. So a slot is marked
 * held while a call has it; a call that finds it held gets a buffer of its
 * own, which luapay_scratch_done frees. Release before raising. Where a
 * raise cannot be helped (out of memory, a finalizer's error that LuaJIT
 * and Lua 5.1 pass on), the slot it leaves held is taken back by the next
 * call that is not inside the holder's (buf.c tells by the C stack), and an
 * own buffer it leaves is freed by the next such take of its slot. */
enum { LUAPAY_HELD_NOT, LUAPAY_HELD_SLOT, LUAPAY_HELD_OWN, LUAPAY_HELD_NONE };
luapay_ctx *luapay_ctx_get(lua_State *L);
/* The frame a slot is marked with is the taker's own: the two below are
 * always inlined, so __builtin_frame_address(0) is the frame of the
 * function that takes the slot, and every call made inside it (its
 * callees', once it returned the slot to its caller: the same frame) lies
 * below that frame, whatever the frames' sizes. So a caller handed a slot
 * still held (ecommpay.c's canonical(), luapay_json_begin) takes that slot
 * no more until it is done with it: a take at the returner's frame would
 * find the holder gone (and take the slot back, or free an own buffer). */
luapay_buf *luapay_scratch_take(luapay_ctx *ctx, int slot, uintptr_t taker_frame); /* buf.c */
/* empty; the context in hand (one look-up for several) */
static inline __attribute__((always_inline)) luapay_buf *luapay_scratch_in(luapay_ctx *ctx, int slot) {
    return luapay_scratch_take(ctx, slot, (uintptr_t)__builtin_frame_address(0));
}
static inline __attribute__((always_inline)) luapay_buf *luapay_scratch(lua_State *L, int slot) {
    return luapay_scratch_take(luapay_ctx_get(L), slot, (uintptr_t)__builtin_frame_address(0));
}
void luapay_scratch_done(luapay_buf *b); /* keeps it unless it grew large */
void luapay_scratch_release(luapay_ctx *ctx); /* frees every buffer: the context's end */

/* HMAC of msg under key into mac (EVP_MAX_MD_SIZE), through the keyed-state
 * cache; 0 if OpenSSL failed (its error queue cleared). */
int luapay_hmac(luapay_ctx *ctx, enum luapay_alg alg, const char *key, size_t klen, const char *msg, size_t mlen,
                unsigned char *mac, size_t *maclen);
void luapay_hmac_cache_clear(luapay_ctx *ctx);

/* Argument checks that raise "fn: bad argument #N 'name' (...)": LuaJIT's
 * luaL_argerror cannot name a C function ("to '?'"), and a misuse error
 * must say which argument is wrong. Strings must be strings, not numbers. */
const char *luapay_check_string(lua_State *L, int arg, const char *fn, const char *name, size_t *len);
int luapay_check_option(lua_State *L, int arg, const char *fn, const char *name, const char *def,
                        const char *const list[]);
int luapay_arg_error(lua_State *L, int arg, const char *fn, const char *name, const char *msg);
enum luapay_alg luapay_check_alg(lua_State *L, int arg, const char *fn, int allow_sha512);
enum luapay_enc luapay_opt_enc(lua_State *L, int arg, const char *fn);

/* Pushes bytes in the requested encoding. */
void luapay_push_encoded(lua_State *L, const unsigned char *p, size_t n, enum luapay_enc enc);

/* Pushes nil and "what: reason" from OpenSSL's error queue (which it clears);
 * returns 2 for `return luapay_push_openssl_error(...)`. */
int luapay_push_openssl_error(lua_State *L, const char *what);


/* Encoders shared with later C files (canonical strings, signatures). */
/* 2n hex digits of in into out (upper or lower case); no NUL. */
void luapay_hex_encode(char *out, const unsigned char *in, size_t n, int upper);
size_t luapay_base64_encode(char *out, const unsigned char *in, size_t n);
/* The decoded length (out holds n / 4 * 3), or -1 with *why set. */
long luapay_base64_decode(unsigned char *out, const unsigned char *in, size_t n, const char **why);
/* key:verify(msg, sig, alg) for the key at stack index 1 (raises as it does:
 * luapay_pkey_check first where a raise must not come later). */
int luapay_pkey_verify(lua_State *L, const char *msg, size_t mlen, const char *sig, size_t slen, enum luapay_alg alg);
void luapay_pkey_check(lua_State *L); /* raises unless the key at stack index 1 is an open one */
#define LUAPAY_BASE64_LEN(n) ((((n) + 2) / 3) * 4)

/* A path in a Lua tree, for error messages (path.c): one frame per level,
 * on the C stack. key (klen bytes) names an object member, or index an
 * array element when key is NULL; table is the table the value sits in. */
#define LUAPAY_PATH_MAX 130
typedef struct luapay_frame {
    const struct luapay_frame *up;
    const char *key;
    size_t klen, index;
    const void *table;
} luapay_frame;
void luapay_path_describe(const luapay_frame *f, char *dst, size_t cap); /* "a.b[2]", "" at the top */
int luapay_path_has_table(const luapay_frame *f, const void *table);    /* is table an ancestor? */

/* Length of the valid UTF-8 sequence at p (no overlongs, no surrogates, at
 * most U+10FFFF), or 0 (json_decode.c). */
size_t luapay_utf8_len(const unsigned char *p, const unsigned char *end);

/* The JSON reader (json_decode.c), for C code that reads a body and works on
 * its text too: each step of the reading is handed to a sink (json_read.h,
 * included with the sink's JR_EVENT), the string events with the decoded
 * bytes (valid until the next event), a number with its text; a member is
 * its key, then the value; an element (n: its 0-based index) the same. */
enum luapay_json_event {
    LUAPAY_JSON_OBJECT, LUAPAY_JSON_ARRAY, LUAPAY_JSON_CLOSE, LUAPAY_JSON_MEMBER, LUAPAY_JSON_ELEMENT,
    LUAPAY_JSON_STRING, LUAPAY_JSON_NUMBER, LUAPAY_JSON_TRUE, LUAPAY_JSON_FALSE, LUAPAY_JSON_NULL
};
#define LUAPAY_JSON_MAX_DEPTH 128
/* Members (key, value) or elements wait on the stack and are set in a
 * table made for their number when the container closes: a table grown
 * one key at a time is rebuilt at every power of two. A long container is
 * set in chunks of LUAPAY_JSON_PENDING. */
#define LUAPAY_JSON_PENDING 32
typedef struct {
    lua_State *L;
    const unsigned char *p, *start, *end;
    int lexemes;
    luapay_buf *scratch; /* boxed: freed by __gc if a Lua error unwinds */
    const char *err;
    void *sink;             /* JR_EVENT's */
    luapay_short *shorts;   /* the context's, its strings in the table at stack slot strings; or NULL */
    int strings;
} luapay_json_reader;
/* json_read.h's pieces that do not see the sink (json_decode.c): */
/* r set up to read text (the strings' table pushed): the stack top before.
 * text is a Lua string's: json_read.h reads the NUL after it as the end */
int luapay_json_begin(lua_State *L, luapay_json_reader *r, const char *text, size_t len, int lexemes);
/* the end of a read: 1 with the value at top + 1, or 0 with nil, err */
int luapay_json_end(luapay_json_reader *r, int ok, int top);
/* a string missing from the context's slots (slot, LUAPAY_SHORTS for one
 * not short) pushed and kept there */
void luapay_json_push_miss(luapay_json_reader *r, const char *s, size_t n, size_t slot, uint64_t a, uint64_t b);
/* a string that is not printable ASCII without escapes (r->p at its
 * opening quote): read, pushed, and where its bytes are; 1 the text's, 2
 * decoded (the scratch buffer's), 0 an error */
int luapay_json_string_rest(luapay_json_reader *r, const char **s, size_t *n);
/* the number s (len bytes, scanned) pushed */
int luapay_json_push_number(luapay_json_reader *r, const unsigned char *s, size_t len, int is_integer);
/* the pending values above slot t set into the table at t (made first
 * while t is nil); *n the last index of an array set; distinct: an
 * object's keys are known to be all different */
void luapay_json_flush(lua_State *L, int t, int object, int *n, int distinct);

/* The pieces of core.json_decode's reader (json_decode.c) for C code that
 * reads a body's text itself: a string (*pp at its opening quote; the text
 * between the quotes as it is, or decoded and appended to b when *decoded)
 * -> NULL or what is wrong; a number -> 1, or 0 if it is not one. Both
 * leave *pp past the value, or where it went wrong. */
/* From p, past the bytes a JSON string holds as they are (printable ASCII
 * but '"' and '\\'), sixteen (SSE2) or eight at a time: the first byte that
 * needs a look, or a byte within the last few before end (which the caller
 * looks at one by one). */
static inline const unsigned char *luapay_json_run(const unsigned char *p, const unsigned char *end) {
#if defined(__SSE2__)
    /* a signed compare: a control character and a byte from 0x80 are both below ' ' */
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(' ');
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i look = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                                    _mm_cmplt_epi8(x, space));
        unsigned marks = (unsigned)_mm_movemask_epi8(look);
        if (marks != 0) return p + __builtin_ctz(marks);
        p += 16;
    }
#elif defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* the high bit of each byte that is a quote, a backslash, a control
     * character or from 0x80; a borrow can only mark a byte above one of
     * those, so the lowest mark is right */
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    while (end - p >= 8) {
        uint64_t x, q, e;
        memcpy(&x, p, 8);
        q = x ^ (ones * '"');
        e = x ^ (ones * '\\');
        uint64_t marks = (x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((e - ones) & ~e)) & highs;
        if (marks != 0) return p + __builtin_ctzll(marks) / 8;
        p += 8;
    }
#else
    (void)end;
#endif
    return p;
}
/* 1 for the bytes a string holds as they are (json_decode.c) */
extern const unsigned char luapay_json_as_is[256];
/* The first byte from p on that a string does not hold as it is ('"',
 * '\\', a control byte, a byte from 0x80), or end: luapay_json_run, then
 * the last few. */
static inline const unsigned char *luapay_json_verbatim(const unsigned char *p, const unsigned char *end) {
    p = luapay_json_run(p, end);
    while (p < end && luapay_json_as_is[*p]) p++;
    return p;
}
const char *luapay_json_scan_string(const unsigned char **pp, const unsigned char *end, luapay_buf *b, int *decoded);
int luapay_json_scan_number(const unsigned char **pp, const unsigned char *end, int *is_integer);
/* The number text on top of the stack replaced by provider.plain's value
 * for it (plain.c). */
void luapay_plain_number(lua_State *L);

/* An object member for sorting in Trustly's order (trustly.c): the key's
 * bytes, shorter first on a tie; slot says where its value is on the Lua
 * stack (0: looked up again by the key). */
typedef struct {
    const char *s;
    size_t n;
    int slot;
} luapay_key_ref;
void luapay_trustly_sort_keys(luapay_key_ref *k, size_t n);

/* v in decimal into out (24 bytes, no NUL): its length. */
size_t luapay_integer_text(long long v, char *out);
/* The JSON text of a number (json_encode.c) into out (64 bytes): its
 * length, 0 if not finite. */
size_t luapay_json_number_text(lua_State *L, int idx, char *out);

extern const luaL_Reg luapay_encode_funcs[];
extern const luaL_Reg luapay_hash_funcs[];
extern const luaL_Reg luapay_random_funcs[];
extern const luaL_Reg luapay_equal_funcs[];
extern const luaL_Reg luapay_pkey_funcs[];
extern const luaL_Reg luapay_http_funcs[];
extern const luaL_Reg luapay_http_head_funcs[];
extern const luaL_Reg luapay_clock_funcs[];
extern const luaL_Reg luapay_json_funcs[];
extern const luaL_Reg luapay_json_decode_funcs[];
extern const luaL_Reg luapay_validate_funcs[];
extern const luaL_Reg luapay_money_funcs[];
extern const luaL_Reg luapay_ecommpay_funcs[];
extern const luaL_Reg luapay_trustly_funcs[];
extern const luaL_Reg luapay_trustly_notification_funcs[];
extern const luaL_Reg luapay_trustpay_funcs[];
extern const luaL_Reg luapay_plain_funcs[];
extern const luaL_Reg luapay_event_funcs[];
extern const luaL_Reg luapay_picks_funcs[];

/* 1 if s is an RFC 9110 token (a method, a header name; http.c). */
int luapay_is_token(const char *s, size_t n);

/* Appends s percent-encoded as core.url_encode(s, form) does (encode.c). */
void luapay_url_encode_add(luapay_buf *b, const char *s, size_t n, int form);
/* The same written at out, which has room for 3 * n + 1 bytes; returns the end. */
char *luapay_url_encode_to(char *out, const char *s, size_t n, int form);
/* Appends s decoded as core.url_decode(s, plus) does (encode.c). */
void luapay_url_decode_add(luapay_buf *b, const char *s, size_t n, int plus);

/* A compiled schema whose root is an object, read from C without Lua calls
 * (validate.c), for a one-pass builder that has the values in hand. */
typedef struct luapay_schema luapay_schema;
enum { LUAPAY_VALUE_ABSENT, LUAPAY_VALUE_STRING, LUAPAY_VALUE_MINOR };
typedef struct {
    int kind;        /* LUAPAY_VALUE_* */
    const char *s;   /* STRING */
    size_t n;
    int64_t minor;   /* MINOR: an amount luapay_read_minor read */
} luapay_field_value;
luapay_schema *luapay_schema_test(lua_State *L, int idx); /* NULL: not a compiled schema */
/* The root's declared fields, in byte order of their names; -1 if the
 * schema is closed or its root is not an object (then call nothing below). */
int luapay_schema_nfields(const luapay_schema *S);
const char *luapay_schema_field(const luapay_schema *S, int i, size_t *len);
int luapay_schema_find(const luapay_schema *S, const char *k, size_t len); /* -1: not declared */
/* 1 if an object with these fields (v[i]: field i's value, every one of
 * its keys a declared field) holds to the schema; 0 if not, or if that
 * needs a Lua value (the general path can tell). */
int luapay_schema_holds_values(const luapay_schema *S, const luapay_field_value *v);

/* picks.c: for the table at root, pushes what core.json_picks returns
 * (plan, a core.json_pick_plan, at plan); how many values. */
int luapay_picks_push(lua_State *L, int root, int plan);

void luapay_pkey_register(lua_State *L);
void luapay_http_register(lua_State *L);
void luapay_json_register(lua_State *L);
void luapay_json_decode_register(lua_State *L);
void luapay_validate_register(lua_State *L);

#endif
