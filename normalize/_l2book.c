/*
 * The per-symbol L2 book, in C.
 *
 * A Binance depth@0ms diff carries about 68 levels, and the venue's books hold 5,000 levels a side:
 * in Python, decoding the level strings to float tuples, applying them to a dict and finding the
 * best price again after the best level is deleted cost about 20 us a message, four times
 * cryptofeed's speed where ten is wanted. Here one call parses a message's raw level arrays (the
 * JSON bytes as the frame has them), applies them and returns them packed as the book_delta record
 * holds them (normalize.records.BookDeltas: little-endian float64 price, size per level), so no
 * Python object is made per level: a float tuple per level alone cost a third of the time.
 *
 * Why these structures:
 * - Each side is an open-addressing hash table of price -> size (linear probing, deletion by
 *   backward shift, so no tombstones). A sorted array was measured first: diffs insert and delete
 *   levels all through the book, and the memmove that costs moved 200 KB a message.
 * - The best price comes from a max-heap of keys (bids: price, asks: -price) cleaned lazily: a
 *   key is pushed when its level is created, and popped from the top only when its level is gone.
 *   Stale keys deeper in the heap are dropped by rebuilding the heap once it holds twice the
 *   levels.
 * - Decimal text is parsed exactly: a mantissa of at most 2^53 with a power of ten of at most 22
 *   is one correctly rounded IEEE operation (Clinger's fast path); anything else goes through
 *   CPython's own correctly rounded PyOS_string_to_double, so the result always equals float(text).
 *   A decimal with more than 15 significant digits is reported, for the INEXACT flag.
 * - A message is parsed completely before any of it is applied: malformed input raises ValueError
 *   and leaves the book as it was.
 * - The decimal parser is also offered on its own (`parse_decimals`), for the price and size text
 *   of trades: CPython's float() takes five times as long, a fifth of normalizing a trade.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_BIG_ENDIAN
#error "packed levels are little-endian float64, written here as the machine holds them"
#endif
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_EXACT_DIGITS 15
#define FAST_MANTISSA (1ULL << 53)
#define MIN_CAPACITY 64

static const double POW10[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* ---------------------------------------------------------------------------------------------
 * One side: key -> size. Keys are prices for bids and negated prices for asks, so the best level
 * of either side is the largest key. A slot is empty when its size is 0 (held levels are > 0).
 */
typedef struct {
    double key;
    double size;
} Slot;

typedef struct {
    Slot *slots; /* a key and its size share a cache line: one miss per lookup, not two */
    Py_ssize_t mask;
    Py_ssize_t count;
    double *heap;
    Py_ssize_t heap_len;
    Py_ssize_t heap_cap;
} Side;

static inline size_t
hash_key(double key)
{
    uint64_t bits;
    memcpy(&bits, &key, sizeof bits);
    bits ^= bits >> 33;
    bits *= 0xff51afd7ed558ccdULL;
    bits ^= bits >> 33;
    return (size_t)bits;
}

/* The slot holding `key`, or ~slot of the empty slot where it would go. */
static inline Py_ssize_t
slot_of(const Side *s, double key)
{
    Py_ssize_t i = (Py_ssize_t)(hash_key(key) & (size_t)s->mask);
    while (s->slots[i].size != 0.0) {
        if (s->slots[i].key == key) {
            return i;
        }
        i = (i + 1) & s->mask;
    }
    return ~i;
}

static int
side_alloc(Side *s, Py_ssize_t capacity)
{
    Slot *slots = PyMem_Calloc((size_t)capacity, sizeof(Slot));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->slots = slots;
    s->mask = capacity - 1;
    s->count = 0;
    return 0;
}

static void
side_free(Side *s)
{
    PyMem_Free(s->slots);
    PyMem_Free(s->heap);
    memset(s, 0, sizeof *s);
}

static int
side_grow(Side *s)
{
    Side old = *s;
    if (side_alloc(s, (old.mask + 1) * 2) < 0) {
        *s = old;
        return -1;
    }
    for (Py_ssize_t i = 0; i <= old.mask; i++) {
        if (old.slots[i].size != 0.0) {
            s->slots[~slot_of(s, old.slots[i].key)] = old.slots[i];
        }
    }
    s->count = old.count;
    PyMem_Free(old.slots);
    return 0;
}

static void
side_remove_slot(Side *s, Py_ssize_t i)
{
    Py_ssize_t j = i;
    for (;;) {
        j = (j + 1) & s->mask;
        if (s->slots[j].size == 0.0) {
            break;
        }
        Py_ssize_t home = (Py_ssize_t)(hash_key(s->slots[j].key) & (size_t)s->mask);
        if (((j - home) & s->mask) >= ((j - i) & s->mask)) {
            s->slots[i] = s->slots[j];
            i = j;
        }
    }
    s->slots[i].size = 0.0;
    s->count--;
}

static void
heap_sift_down(double *heap, Py_ssize_t len, Py_ssize_t i)
{
    double key = heap[i];
    for (;;) {
        Py_ssize_t child = 2 * i + 1;
        if (child >= len) {
            break;
        }
        if (child + 1 < len && heap[child + 1] > heap[child]) {
            child++;
        }
        if (heap[child] <= key) {
            break;
        }
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = key;
}

static void
heap_pop(double *heap, Py_ssize_t *len)
{
    heap[0] = heap[--*len];
    if (*len > 0) {
        heap_sift_down(heap, *len, 0);
    }
}

static int
heap_reserve(Side *s, Py_ssize_t need)
{
    if (need <= s->heap_cap) {
        return 0;
    }
    Py_ssize_t cap = s->heap_cap ? s->heap_cap : MIN_CAPACITY;
    while (cap < need) {
        cap *= 2;
    }
    double *heap = PyMem_Realloc(s->heap, (size_t)cap * sizeof(double));
    if (heap == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->heap = heap;
    s->heap_cap = cap;
    return 0;
}

static int
heap_push(Side *s, double key)
{
    if (heap_reserve(s, s->heap_len + 1) < 0) {
        return -1;
    }
    double *heap = s->heap;
    Py_ssize_t i = s->heap_len++;
    while (i > 0) {
        Py_ssize_t parent = (i - 1) / 2;
        if (heap[parent] >= key) {
            break;
        }
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = key;
    return 0;
}

/* Rebuild the heap from the levels held once stale keys make up half of it. */
static void
heap_compact(Side *s)
{
    if (s->heap_len <= 2 * s->count + MIN_CAPACITY) {
        return;
    }
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i <= s->mask; i++) {
        if (s->slots[i].size != 0.0) {
            s->heap[n++] = s->slots[i].key;
        }
    }
    s->heap_len = n;
    for (Py_ssize_t i = n / 2 - 1; i >= 0; i--) {
        heap_sift_down(s->heap, n, i);
    }
}

static int
side_set(Side *s, double key, double size)
{
    key += 0.0; /* -0.0 and 0.0 are one price */
    Py_ssize_t i = slot_of(s, key);
    if (size == 0.0) {
        if (i >= 0) {
            side_remove_slot(s, i);
        }
        return 0;
    }
    if (i >= 0) {
        s->slots[i].size = size;
        return 0;
    }
    if ((s->count + 1) * 2 > s->mask + 1) {
        if (side_grow(s) < 0) {
            return -1;
        }
        i = slot_of(s, key);
    }
    i = ~i;
    s->slots[i].key = key;
    s->slots[i].size = size;
    s->count++;
    return heap_push(s, key);
}

/* The best level, popping keys of levels that are gone; 0 when the side is empty. */
static int
side_best(Side *s, double *key, double *size)
{
    while (s->heap_len > 0) {
        Py_ssize_t i = slot_of(s, s->heap[0]);
        if (i >= 0) {
            *key = s->slots[i].key;
            *size = s->slots[i].size;
            return 1;
        }
        heap_pop(s->heap, &s->heap_len);
    }
    return 0;
}

static void
side_clear(Side *s)
{
    memset(s->slots, 0, (size_t)(s->mask + 1) * sizeof(Slot));
    s->count = 0;
    s->heap_len = 0;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing a side's raw JSON levels: [["price","size"], ...] (quoted or bare numbers).
 */
typedef struct {
    const char *start;
    const char *p;
    const char *end;
    const char *side;
} Cursor;

/* Parsed levels of one message: (price, size) pairs, bids first. From JSON, each value is first a
 * signed mantissa over 10^scale; the divisions are done together afterwards, where the CPU
 * overlaps them (one after each parse would stall on its latency). */
typedef struct {
    double *pairs;
    unsigned char *scales;
    Py_ssize_t len;
    Py_ssize_t cap;
} Scratch;

static int
fail(const Cursor *c, const char *why)
{
    PyErr_Format(PyExc_ValueError, "%s levels: %s at byte %zd", c->side, why, (Py_ssize_t)(c->p - c->start));
    return -1;
}

static inline void
skip_ws(Cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t')) {
        c->p++;
    }
}

static inline int
expect(Cursor *c, char ch, const char *why)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != ch) {
        return fail(c, why);
    }
    c->p++;
    return 0;
}

/* Significant digits of a decimal's text: from the first non-zero digit to the last. */
static int
significant_digits(const char *p, const char *end)
{
    int since_first = 0, significant = 0;
    for (; p < end && *p != 'e' && *p != 'E'; p++) {
        if (*p < '0' || *p > '9') {
            continue;
        }
        if (since_first || *p != '0') {
            since_first++;
            if (*p != '0') {
                significant = since_first;
            }
        }
    }
    return significant;
}

/* One decimal: *out / 10^*scale is its value, correctly rounded. */
static int
parse_decimal(Cursor *c, double *out, unsigned char *scale, int *inexact)
{
    int quoted = c->p < c->end && *c->p == '"';
    if (quoted) {
        c->p++;
    }
    const char *token = c->p;
    const char *end = c->end;
    const char *p = token;
    int negative = p < end && *p == '-';
    p += negative;
    while (p < end && *p == '0') {
        p++; /* leading zeros carry nothing */
    }
    const char *digits_start = p;
    uint64_t mantissa = 0;
    for (; p < end && (unsigned)(*p - '0') < 10; p++) {
        mantissa = mantissa * 10 + (uint64_t)(*p - '0');
    }
    int kept = (int)(p - digits_start);
    int exponent = 0;
    if (p < end && *p == '.') {
        const char *fraction = ++p;
        for (; p < end && (unsigned)(*p - '0') < 10; p++) {
            mantissa = mantissa * 10 + (uint64_t)(*p - '0');
        }
        exponent = -(int)(p - fraction);
        kept += (int)(p - fraction);
        if (p - token == negative + 1) { /* "." or "-." */
            c->p = p;
            return fail(c, "expected a decimal");
        }
    }
    if (p == token + negative) {
        c->p = p;
        return fail(c, "expected a decimal");
    }
    int simple = 1;
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *exp_start = ++p;
        p += p < end && (*p == '+' || *p == '-');
        const char *exp_digits = p;
        for (; p < end && (unsigned)(*p - '0') < 10; p++) {
        }
        if (p == exp_digits) {
            c->p = p;
            return fail(c, "bad exponent");
        }
        (void)exp_start;
        simple = 0;
    }
    const char *token_end = p;
    c->p = p;
    if (quoted) {
        if (c->p >= c->end || *c->p != '"') {
            return fail(c, "bad decimal string");
        }
        c->p++;
    }
    /* `kept` counts the digits from the first non-zero integer digit (or every fraction digit):
     * at most 15 of them cannot hold 16 significant digits, the common case */
    if (kept > MAX_EXACT_DIGITS && significant_digits(token, token_end) > MAX_EXACT_DIGITS) {
        *inexact = 1;
    }
    double value;
    if (simple && kept <= 19) {
        while (mantissa > FAST_MANTISSA && mantissa % 10 == 0 && exponent < 0) {
            mantissa /= 10;
            exponent++;
        }
    }
    if (simple && kept <= 19 && mantissa <= FAST_MANTISSA && exponent >= -22) {
        *out = negative ? -(double)mantissa : (double)mantissa;
        *scale = (unsigned char)-exponent;
        return 0;
    }
    else {
        char text[128];
        size_t len = (size_t)(token_end - token);
        if (len >= sizeof text) {
            return fail(c, "decimal too long");
        }
        memcpy(text, token, len);
        text[len] = '\0';
        value = PyOS_string_to_double(text, NULL, NULL);
        if (value == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return fail(c, "bad decimal");
        }
    }
    if (!isfinite(value)) {
        return fail(c, "decimal out of range");
    }
    *out = value;
    *scale = 0;
    return 0;
}

static int
scratch_reserve(Scratch *s, Py_ssize_t pairs)
{
    if (pairs <= s->cap) {
        return 0;
    }
    Py_ssize_t cap = s->cap ? s->cap : MIN_CAPACITY;
    while (cap < pairs) {
        cap *= 2;
    }
    double *grown = PyMem_Realloc(s->pairs, (size_t)cap * 2 * sizeof(double));
    if (grown != NULL) {
        s->pairs = grown;
    }
    unsigned char *scales = grown ? PyMem_Realloc(s->scales, (size_t)cap * 2) : NULL;
    if (scales == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->scales = scales;
    s->cap = cap;
    return 0;
}

static inline int
check_size(Cursor *c, double size)
{
    return size < 0.0 ? fail(c, "negative size") : 0;
}

/* Parse one side's levels onto the end of `out`; returns the number parsed, or -1. */
static Py_ssize_t
parse_side(Cursor *c, Scratch *out, int *inexact)
{
    Py_ssize_t first = out->len;
    if (expect(c, '[', "expected '['") < 0) {
        return -1;
    }
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
    }
    else {
        for (;;) {
            if (scratch_reserve(out, out->len + 1) < 0 || expect(c, '[', "expected a level '['") < 0) {
                return -1;
            }
            double *pair = out->pairs + 2 * out->len;
            unsigned char *scale = out->scales + 2 * out->len;
            skip_ws(c);
            if (parse_decimal(c, pair, scale, inexact) < 0 || expect(c, ',', "expected ',' after the price") < 0) {
                return -1;
            }
            skip_ws(c);
            if (parse_decimal(c, pair + 1, scale + 1, inexact) < 0 || check_size(c, pair[1]) < 0
                || expect(c, ']', "a level must be [price, size]") < 0) {
                return -1;
            }
            out->len++;
            skip_ws(c);
            if (c->p < c->end && *c->p == ',') {
                c->p++;
                continue;
            }
            if (expect(c, ']', "expected ',' or ']'") < 0) {
                return -1;
            }
            break;
        }
    }
    skip_ws(c);
    if (c->p != c->end) {
        fail(c, "trailing data");
        return -1;
    }
    return out->len - first;
}

/* Parse one side given as Python (price, size) pairs onto the end of `out`. */
static Py_ssize_t
collect_side(PyObject *levels, Scratch *out, const char *side)
{
    Py_ssize_t first = out->len;
    PyObject *seq = PySequence_Fast(levels, "levels must be a sequence of (price, size)");
    if (seq == NULL) {
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (scratch_reserve(out, out->len + n) < 0) {
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *level = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *pair = PySequence_Fast(level, "a level must be (price, size)");
        if (pair == NULL) {
            Py_DECREF(seq);
            return -1;
        }
        double price = -1.0, size = -1.0;
        int ok = PySequence_Fast_GET_SIZE(pair) == 2;
        if (ok) {
            price = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(pair, 0));
            size = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(pair, 1));
        }
        Py_DECREF(pair);
        if (PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        if (!ok || !isfinite(price) || !isfinite(size) || size < 0.0) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError, "%s level %zd: a level must be (finite price, size >= 0)", side, i);
            return -1;
        }
        out->pairs[2 * out->len] = price;
        out->pairs[2 * out->len + 1] = size;
        out->len++;
    }
    Py_DECREF(seq);
    return out->len - first;
}

/* ---------------------------------------------------------------------------------------------
 * The Python type.
 */
typedef struct {
    PyObject_HEAD
    Side bids;
    Side asks;
    Scratch scratch;
} Book;

static int
book_init(Book *self, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "L2Book() takes no arguments");
        return -1;
    }
    if (self->bids.slots != NULL) {
        side_clear(&self->bids);
        side_clear(&self->asks);
        return 0;
    }
    return side_alloc(&self->bids, MIN_CAPACITY) < 0 || side_alloc(&self->asks, MIN_CAPACITY) < 0 ? -1 : 0;
}

static void
book_dealloc(Book *self)
{
    side_free(&self->bids);
    side_free(&self->asks);
    PyMem_Free(self->scratch.pairs);
    PyMem_Free(self->scratch.scales);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
apply_pairs(Book *self, Py_ssize_t n_bids, Py_ssize_t n_asks)
{
    const double *pairs = self->scratch.pairs;
    for (Py_ssize_t i = 0; i < n_bids; i++) {
        if (side_set(&self->bids, pairs[2 * i], pairs[2 * i + 1]) < 0) {
            return -1;
        }
    }
    pairs += 2 * n_bids;
    for (Py_ssize_t i = 0; i < n_asks; i++) {
        if (side_set(&self->asks, -pairs[2 * i], pairs[2 * i + 1]) < 0) {
            return -1;
        }
    }
    heap_compact(&self->bids);
    heap_compact(&self->asks);
    return 0;
}

static PyObject *
level_tuple(double price, double size)
{
    PyObject *p = PyFloat_FromDouble(price);
    PyObject *q = PyFloat_FromDouble(size);
    PyObject *pair = (p && q) ? PyTuple_New(2) : NULL;
    if (pair == NULL) {
        Py_XDECREF(p);
        Py_XDECREF(q);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, p);
    PyTuple_SET_ITEM(pair, 1, q);
    /* two floats cannot form a cycle; the collector would untrack it on its first pass anyway */
    PyObject_GC_UnTrack(pair);
    return pair;
}

/* The scratch levels as the two packed sides: (bids, asks). */
static PyObject *
packed_sides(const Scratch *scratch, Py_ssize_t n_bids, Py_ssize_t n_asks)
{
    const char *bytes = (const char *)scratch->pairs;
    Py_ssize_t level = 2 * sizeof(double);
    PyObject *bids = PyBytes_FromStringAndSize(bytes, n_bids * level);
    PyObject *asks = bids ? PyBytes_FromStringAndSize(bytes + n_bids * level, n_asks * level) : NULL;
    PyObject *result = asks ? PyTuple_Pack(2, bids, asks) : NULL;
    Py_XDECREF(bids);
    Py_XDECREF(asks);
    return result;
}

PyDoc_STRVAR(apply_json_doc,
"apply_json(bids, asks) -> (bids, asks, inexact)\n\n"
"Parse and apply one message's raw JSON level arrays ([[\"price\", \"size\"], ...], any object\n"
"with the buffer protocol, such as msgspec.Raw). Returns the levels packed (bytes of\n"
"little-endian float64 price, size) in the venue's order, and whether a decimal had more than\n"
"15 significant digits. A size of 0 deletes the level. Malformed input raises ValueError and\n"
"changes nothing.");

static PyObject *
book_apply_json(Book *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_json takes the bids and asks JSON");
        return NULL;
    }
    Py_buffer bid_buf, ask_buf;
    if (PyObject_GetBuffer(args[0], &bid_buf, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &ask_buf, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&bid_buf);
        return NULL;
    }
    int inexact = 0;
    self->scratch.len = 0;
    Cursor bids = {bid_buf.buf, bid_buf.buf, (const char *)bid_buf.buf + bid_buf.len, "bid"};
    Cursor asks = {ask_buf.buf, ask_buf.buf, (const char *)ask_buf.buf + ask_buf.len, "ask"};
    Py_ssize_t n_bids = parse_side(&bids, &self->scratch, &inexact);
    Py_ssize_t n_asks = n_bids < 0 ? -1 : parse_side(&asks, &self->scratch, &inexact);
    PyBuffer_Release(&bid_buf);
    PyBuffer_Release(&ask_buf);
    if (n_asks < 0) {
        return NULL;
    }
    double *values = self->scratch.pairs;
    const unsigned char *scales = self->scratch.scales;
    for (Py_ssize_t i = 0; i < 2 * self->scratch.len; i++) {
        values[i] /= POW10[scales[i]];
    }
    if (apply_pairs(self, n_bids, n_asks) < 0) {
        return NULL;
    }
    PyObject *sides = packed_sides(&self->scratch, n_bids, n_asks);
    if (sides == NULL) {
        return NULL;
    }
    PyObject *result = PyTuple_Pack(3, PyTuple_GET_ITEM(sides, 0), PyTuple_GET_ITEM(sides, 1),
                                    inexact ? Py_True : Py_False);
    Py_DECREF(sides);
    return result;
}

PyDoc_STRVAR(apply_levels_doc,
"apply_levels(bids, asks) -> (bids, asks)\n\n"
"Apply one message's levels given as (price, size) pairs; a size of 0 deletes the level.\n"
"Returns them packed, as apply_json does. Invalid levels (not finite, negative size) raise\n"
"ValueError and change nothing.");

static PyObject *
book_apply_levels(Book *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_levels takes the bids and asks");
        return NULL;
    }
    self->scratch.len = 0;
    Py_ssize_t n_bids = collect_side(args[0], &self->scratch, "bid");
    Py_ssize_t n_asks = n_bids < 0 ? -1 : collect_side(args[1], &self->scratch, "ask");
    if (n_asks < 0 || apply_pairs(self, n_bids, n_asks) < 0) {
        return NULL;
    }
    return packed_sides(&self->scratch, n_bids, n_asks);
}

PyDoc_STRVAR(parse_decimals_doc,
"parse_decimals(*texts) -> (value, ..., inexact)\n\n"
"Decimal texts (JSON numbers, as venues quote prices and sizes) as the floats float(text) gives,\n"
"parsed as the books parse their levels, then whether any has more than 15 significant digits.\n"
"float() alone takes five times as long. Text float() takes that is no JSON number (whitespace,\n"
"'+', '_', nan, infinities) raises ValueError, as does a value beyond float range.");

static PyObject *
parse_decimals(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *result = PyTuple_New(nargs + 1);
    if (result == NULL) {
        return NULL;
    }
    int inexact = 0;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_ssize_t len;
        const char *text = PyUnicode_Check(args[i]) ? PyUnicode_AsUTF8AndSize(args[i], &len) : NULL;
        if (text == NULL) {
            Py_DECREF(result);
            return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_TypeError, "a decimal's text is a str, not %.100s",
                                                          Py_TYPE(args[i])->tp_name);
        }
        Cursor c = {text, text, text + len, "decimal"};
        double value;
        unsigned char scale;
        if (len == 0 || text[0] == '"' || parse_decimal(&c, &value, &scale, &inexact) < 0 || c.p != c.end) {
            PyErr_Clear();
            Py_DECREF(result);
            return PyErr_Format(PyExc_ValueError, "not a decimal: %R", args[i]);
        }
        PyObject *number = PyFloat_FromDouble(value / POW10[scale]);
        if (number == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyTuple_SET_ITEM(result, i, number);
    }
    PyTuple_SET_ITEM(result, nargs, PyBool_FromLong(inexact));
    return result;
}

static PyObject *
book_clear(Book *self, PyObject *Py_UNUSED(ignored))
{
    side_clear(&self->bids);
    side_clear(&self->asks);
    Py_RETURN_NONE;
}

static PyObject *
best_price(Side *s, double sign)
{
    double key, size;
    if (!side_best(s, &key, &size)) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble(sign * key + 0.0);
}

static PyObject *
book_bbo(Book *self, PyObject *Py_UNUSED(ignored))
{
    double bid, bid_size, ask, ask_size;
    int has_bid = side_best(&self->bids, &bid, &bid_size);
    int has_ask = side_best(&self->asks, &ask, &ask_size);
    PyObject *items[4] = {
        has_bid ? PyFloat_FromDouble(bid) : Py_NewRef(Py_None),
        has_bid ? PyFloat_FromDouble(bid_size) : Py_NewRef(Py_None),
        has_ask ? PyFloat_FromDouble(-ask + 0.0) : Py_NewRef(Py_None),
        has_ask ? PyFloat_FromDouble(ask_size) : Py_NewRef(Py_None),
    };
    PyObject *result = NULL;
    if (items[0] && items[1] && items[2] && items[3]) {
        result = PyTuple_Pack(4, items[0], items[1], items[2], items[3]);
    }
    for (int i = 0; i < 4; i++) {
        Py_XDECREF(items[i]);
    }
    return result;
}

static PyObject *
book_crossed(Book *self, PyObject *Py_UNUSED(ignored))
{
    double bid, bid_size, ask, ask_size;
    int crossed = side_best(&self->bids, &bid, &bid_size) && side_best(&self->asks, &ask, &ask_size)
                  && bid >= -ask;
    return PyBool_FromLong(crossed);
}

/* The best `depth` levels of a side, best first, popped from a copy of its heap. */
static PyObject *
side_top(Side *s, Py_ssize_t depth, double sign)
{
    PyObject *list = PyList_New(0);
    double *heap = list ? PyMem_Malloc((size_t)(s->heap_len ? s->heap_len : 1) * sizeof(double)) : NULL;
    if (heap == NULL) {
        Py_XDECREF(list);
        return list ? PyErr_NoMemory() : NULL;
    }
    if (s->heap_len > 0) {
        memcpy(heap, s->heap, (size_t)s->heap_len * sizeof(double));
    }
    Py_ssize_t len = s->heap_len;
    int have_previous = 0;
    double previous = 0.0;
    while (len > 0 && PyList_GET_SIZE(list) < depth) {
        double key = heap[0];
        heap_pop(heap, &len);
        if (have_previous && key == previous) {
            continue; /* a key pushed again after its level was deleted and re-created */
        }
        have_previous = 1;
        previous = key;
        Py_ssize_t i = slot_of(s, key);
        if (i < 0) {
            continue;
        }
        PyObject *pair = level_tuple(sign * key + 0.0, s->slots[i].size);
        if (pair == NULL || PyList_Append(list, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(list);
            PyMem_Free(heap);
            return NULL;
        }
        Py_DECREF(pair);
    }
    PyMem_Free(heap);
    return list;
}

PyDoc_STRVAR(top_doc,
"top(depth) -> (bids, asks)\n\n"
"The best `depth` levels per side as (price, size), best first (bids descending, asks\n"
"ascending).");

static PyObject *
book_top(Book *self, PyObject *arg)
{
    Py_ssize_t depth = PyLong_AsSsize_t(arg);
    if (depth == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *bids = side_top(&self->bids, depth, 1.0);
    PyObject *asks = bids ? side_top(&self->asks, depth, -1.0) : NULL;
    if (asks == NULL) {
        Py_XDECREF(bids);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, bids, asks);
    Py_DECREF(bids);
    Py_DECREF(asks);
    return result;
}

static PyObject *
side_dict(Side *s, double sign)
{
    PyObject *dict = PyDict_New();
    for (Py_ssize_t i = 0; dict != NULL && i <= s->mask; i++) {
        if (s->slots[i].size == 0.0) {
            continue;
        }
        PyObject *price = PyFloat_FromDouble(sign * s->slots[i].key + 0.0);
        PyObject *size = PyFloat_FromDouble(s->slots[i].size);
        if (price == NULL || size == NULL || PyDict_SetItem(dict, price, size) < 0) {
            Py_CLEAR(dict);
        }
        Py_XDECREF(price);
        Py_XDECREF(size);
    }
    return dict;
}

static PyObject *
book_get_bids(Book *self, void *Py_UNUSED(closure))
{
    return side_dict(&self->bids, 1.0);
}

static PyObject *
book_get_asks(Book *self, void *Py_UNUSED(closure))
{
    return side_dict(&self->asks, -1.0);
}

static PyObject *
book_get_best_bid(Book *self, void *Py_UNUSED(closure))
{
    return best_price(&self->bids, 1.0);
}

static PyObject *
book_get_best_ask(Book *self, void *Py_UNUSED(closure))
{
    return best_price(&self->asks, -1.0);
}

static Py_ssize_t
book_len(Book *self)
{
    return self->bids.count + self->asks.count;
}

static PyMethodDef book_methods[] = {
    {"apply_json", (PyCFunction)(void (*)(void))book_apply_json, METH_FASTCALL, apply_json_doc},
    {"apply_levels", (PyCFunction)(void (*)(void))book_apply_levels, METH_FASTCALL, apply_levels_doc},
    {"clear", (PyCFunction)book_clear, METH_NOARGS, "Remove every level."},
    {"bbo", (PyCFunction)book_bbo, METH_NOARGS,
     "(bid price, bid size, ask price, ask size); None for an empty side."},
    {"crossed", (PyCFunction)book_crossed, METH_NOARGS, "Best bid at or above best ask."},
    {"top", (PyCFunction)book_top, METH_O, top_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef book_getset[] = {
    {"bids", (getter)book_get_bids, NULL, "A dict copy of the bid side: price -> size.", NULL},
    {"asks", (getter)book_get_asks, NULL, "A dict copy of the ask side: price -> size.", NULL},
    {"best_bid", (getter)book_get_best_bid, NULL, "The best bid price, or None.", NULL},
    {"best_ask", (getter)book_get_best_ask, NULL, "The best ask price, or None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods book_as_sequence = {
    .sq_length = (lenfunc)book_len,
};

static PyTypeObject BookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "normalize._l2book.L2Book",
    .tp_doc = PyDoc_STR("A per-symbol L2 book: price -> size per side (sizes absolute, 0 deletes); "
                        "len() is the number of levels held."),
    .tp_basicsize = sizeof(Book),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)book_init,
    .tp_dealloc = (destructor)book_dealloc,
    .tp_methods = book_methods,
    .tp_getset = book_getset,
    .tp_as_sequence = &book_as_sequence,
};

static PyMethodDef module_methods[] = {
    {"parse_decimals", (PyCFunction)(void (*)(void))parse_decimals, METH_FASTCALL, parse_decimals_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "normalize._l2book",
    .m_doc = "The per-symbol L2 book in C, and its exact decimal parser: see normalize.book and normalize.decimals.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__l2book(void)
{
    if (PyType_Ready(&BookType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "L2Book", (PyObject *)&BookType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
