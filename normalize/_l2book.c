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
 *
 * TextBook, the second type (at the end of the file), is the book of a venue whose checksum covers
 * its best levels in the venue's own text (OKX): sorted sides that keep each level's text, the
 * checksum's CRC32, and contract sizes converted to base units. It parses with the same parser.
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

/* A parsed level's text, for TextBook (its checksum is over the venue's strings). */
typedef struct {
    const char *price; /* the venue's text of the price and the size, inside the message's buffer */
    const char *size;
    Py_ssize_t price_len;
    Py_ssize_t size_len;
    double native; /* the size as the venue counts it (before conversion to base units) */
} LevelText;

/* Parsed levels of one message: (price, size) pairs, bids first. From JSON, each value is first a
 * signed mantissa over 10^scale; the divisions are done together afterwards, where the CPU
 * overlaps them (one after each parse would stall on its latency). */
typedef struct {
    double *pairs;
    unsigned char *scales;
    LevelText *texts; /* kept only by a scratch made with `with_texts` (TextBook's) */
    Py_ssize_t len;
    Py_ssize_t cap;
    int with_texts;
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
    if (scales != NULL) {
        s->scales = scales;
    }
    LevelText *texts = NULL;
    if (scales != NULL && s->with_texts) {
        texts = PyMem_Realloc(s->texts, (size_t)cap * sizeof(LevelText));
        if (texts != NULL) {
            s->texts = texts;
        }
    }
    if (scales == NULL || (s->with_texts && texts == NULL)) {
        PyErr_NoMemory();
        return -1;
    }
    s->cap = cap;
    return 0;
}

static void
scratch_free(Scratch *s)
{
    PyMem_Free(s->pairs);
    PyMem_Free(s->scales);
    PyMem_Free(s->texts);
    s->pairs = NULL;
    s->scales = NULL;
    s->texts = NULL;
    s->len = s->cap = 0;
}

static inline int
check_size(Cursor *c, double size)
{
    return size < 0.0 ? fail(c, "negative size") : 0;
}

/* Skip one JSON string or bare scalar (number, true, false, null): a level's fields after its size,
 * such as OKX's deprecated liquidated-orders count and its orders count. */
static int
skip_scalar(Cursor *c)
{
    if (c->p < c->end && *c->p == '"') {
        for (c->p++; c->p < c->end && *c->p != '"'; c->p++) {
            if (*c->p == '\\' && ++c->p == c->end) {
                break;
            }
        }
        if (c->p >= c->end) {
            return fail(c, "unterminated string");
        }
        c->p++;
        return 0;
    }
    const char *start = c->p;
    while (c->p < c->end && (((unsigned)(*c->p - '0') < 10) || (*c->p >= 'a' && *c->p <= 'z')
                             || *c->p == '-' || *c->p == '+' || *c->p == '.' || *c->p == 'E')) {
        c->p++;
    }
    return c->p == start ? fail(c, "a level's fields after the size must be strings or numbers") : 0;
}

/* The text of the decimal parsed from `at` to `end`, without its quotes. */
static inline void
decimal_text(const char *at, const char *end, const char **text, Py_ssize_t *len)
{
    int quoted = *at == '"';
    *text = at + quoted;
    *len = (end - at) - 2 * quoted;
}

/* Parse one side's levels onto the end of `out`; returns the number parsed, or -1. A level is
 * [price, size], followed by any number of scalars where `extra_fields` allows them; where the
 * scratch keeps texts, each level's price and size text are recorded too. */
static Py_ssize_t
parse_side(Cursor *c, Scratch *out, int *inexact, int extra_fields)
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
            const char *price_at = c->p;
            if (parse_decimal(c, pair, scale, inexact) < 0) {
                return -1;
            }
            const char *price_end = c->p;
            if (expect(c, ',', "expected ',' after the price") < 0) {
                return -1;
            }
            skip_ws(c);
            const char *size_at = c->p;
            if (parse_decimal(c, pair + 1, scale + 1, inexact) < 0 || check_size(c, pair[1]) < 0) {
                return -1;
            }
            if (out->texts != NULL) {
                LevelText *text = out->texts + out->len;
                decimal_text(price_at, price_end, &text->price, &text->price_len);
                decimal_text(size_at, c->p, &text->size, &text->size_len);
            }
            while (extra_fields) {
                skip_ws(c);
                if (c->p >= c->end || *c->p != ',') {
                    break;
                }
                c->p++;
                skip_ws(c);
                if (skip_scalar(c) < 0) {
                    return -1;
                }
            }
            if (expect(c, ']', extra_fields ? "expected ',' or ']' after a level's field"
                                            : "a level must be [price, size]") < 0) {
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
    scratch_free(&self->scratch);
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
    Py_ssize_t n_bids = parse_side(&bids, &self->scratch, &inexact, 0);
    Py_ssize_t n_asks = n_bids < 0 ? -1 : parse_side(&asks, &self->scratch, &inexact, 0);
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

/* =============================================================================================
 * TextBook: the book of a venue whose checksum covers its best N levels in its own text.
 *
 * OKX's CRC32 runs over the best 25 bids and asks, interleaved, in the venue's own strings
 * ("30261", not 30261.0), after every message. So the text of every level is kept, and the best 25
 * are found in order each time: L2Book's heap gives the one best level cheaply, not 25 in order,
 * and keeps no text. Here each side is an array sorted by key (bids: price, asks: -price),
 * ascending, so the best level is the last one and the levels the venue changes most, near the
 * top, move the fewest entries: OKX books are 400 levels deep, a memmove of at most 400 x 32
 * bytes. A level's "price:size" text lives in the side's arena at an offset (the arena moves when
 * it grows); a changed level's text is rewritten in place when it fits and appended otherwise, and
 * the arena is compacted, in level order, whenever it must grow.
 *
 * Sizes counted in contracts are converted to base units in the same call, exactly as Python's
 * Contract.to_base (normalize/venues/okx/instruments.py) computes them (`to_base_units`), so the
 * normalizer gets the packed levels it publishes, and the native sizes, from one call.
 */
#define ARENA_MIN 4096
#define EXACT_INTEGER 9007199254740992.0 /* 2^53: every integer below it is a double */

/* CRC-32 (zlib's, IEEE 802.3), eight bytes a step. zlib itself is not linked: the Docker build
 * stage and a bare `pip install` have no zlib headers, and on a 1 KB checksum text this is as
 * fast. */
static uint32_t CRC_TABLE[8][256];

static void
crc32_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        CRC_TABLE[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            CRC_TABLE[t][i] = (CRC_TABLE[t - 1][i] >> 8) ^ CRC_TABLE[0][CRC_TABLE[t - 1][i] & 0xff];
        }
    }
}

static uint32_t
crc32_of(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4); /* little-endian words: the build refuses big-endian machines above */
        memcpy(&hi, p + 4, 4);
        lo ^= crc;
        crc = CRC_TABLE[7][lo & 0xff] ^ CRC_TABLE[6][(lo >> 8) & 0xff] ^ CRC_TABLE[5][(lo >> 16) & 0xff]
              ^ CRC_TABLE[4][lo >> 24] ^ CRC_TABLE[3][hi & 0xff] ^ CRC_TABLE[2][(hi >> 8) & 0xff]
              ^ CRC_TABLE[1][(hi >> 16) & 0xff] ^ CRC_TABLE[0][hi >> 24];
    }
    while (n--) {
        crc = CRC_TABLE[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    }
    return crc ^ 0xFFFFFFFFu;
}

/* What a contract is worth, as Contract holds it. */
typedef struct {
    int active;        /* sizes are contracts */
    PyObject *to_base; /* the contract's to_base, for the cases not computed here */
    double num;        /* float(contract.num) and float(contract.scale): what Python's float * int uses */
    double scale;
    int inverse;
    int exact;       /* num and scale are ints below 2^53: the fractional-contract product is exact here */
    int python_only; /* float(num) or float(scale) overflows: every conversion is to_base's (it raises) */
} Conversion;

/* Base units of one level's size, as Contract.to_base(native, price, text) gives them, bit for bit:
 * - whole contracts: native * num / scale, the ints converted to float first as Python does;
 * - fractional ones: round(native * 10^places) * num / (scale * 10^places), exact integers and one
 *   correctly rounded division in Python; doubles give the same while both integers stay below
 *   2^53 and 10^places is exact (places <= 22);
 * - then / price for inverse contracts.
 * Anything else (exponent text, larger integers) is asked of to_base itself. */
static int
to_base_units(const Conversion *k, const LevelText *t, double price, const char *side, double *out)
{
    double native = t->native, value;
    if (k->python_only) {
        goto python;
    }
    if (native == floor(native)) {
        value = native * k->num / k->scale;
    }
    else {
        const char *dot = memchr(t->size, '.', (size_t)t->size_len);
        if (dot == NULL || !k->exact || memchr(t->size, 'e', (size_t)t->size_len) != NULL
            || memchr(t->size, 'E', (size_t)t->size_len) != NULL) {
            goto python;
        }
        Py_ssize_t places = t->size_len - (dot - t->size) - 1;
        if (places > 22) {
            goto python;
        }
        double units = nearbyint(native * POW10[places]); /* Python's round(): half to even */
        double numerator = units * k->num;
        double denominator = k->scale * POW10[places];
        if (numerator >= EXACT_INTEGER || denominator >= EXACT_INTEGER) {
            goto python;
        }
        value = numerator / denominator;
    }
    if (k->inverse) {
        if (price == 0.0) {
            PyErr_Format(PyExc_ZeroDivisionError, "%s levels: contracts of an inverse instrument at price 0", side);
            return -1;
        }
        value /= price;
    }
    *out = value;
    return 0;
python:
    if (k->to_base == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "TextBook: the contract is gone");
        return -1;
    }
    PyObject *result = PyObject_CallFunction(k->to_base, "dds#", native, price, t->size, t->size_len);
    if (result == NULL) {
        return -1;
    }
    value = PyFloat_AsDouble(result);
    Py_DECREF(result);
    if (value == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    *out = value;
    return 0;
}

typedef struct {
    double key;  /* bids: price; asks: -price */
    double size; /* base units */
    Py_ssize_t text; /* offset of the level's "price:size" in the side's arena */
    Py_ssize_t text_len;
} TextLevel;

typedef struct {
    TextLevel *levels; /* ascending keys: the best level last */
    Py_ssize_t count;
    Py_ssize_t cap;
    char *arena;
    Py_ssize_t arena_len;
    Py_ssize_t arena_cap;
    Py_ssize_t live; /* bytes of the arena that are some level's text */
} TextSide;

static void
tside_free(TextSide *s)
{
    PyMem_Free(s->levels);
    PyMem_Free(s->arena);
    memset(s, 0, sizeof *s);
}

static void
tside_clear(TextSide *s)
{
    s->count = 0;
    s->arena_len = 0;
    s->live = 0;
}

/* Room for `levels` more levels and `bytes` more text, so that applying a message cannot fail. */
static int
tside_reserve(TextSide *s, Py_ssize_t levels, Py_ssize_t bytes)
{
    if (s->count + levels > s->cap) {
        Py_ssize_t cap = s->cap ? s->cap : MIN_CAPACITY;
        while (cap < s->count + levels) {
            cap *= 2;
        }
        TextLevel *grown = PyMem_Realloc(s->levels, (size_t)cap * sizeof(TextLevel));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        s->levels = grown;
        s->cap = cap;
    }
    if (s->arena_len + bytes > s->arena_cap) {
        /* compact into an arena with room for as much again as the live and the new text, so the
         * copying costs O(1) a byte written */
        Py_ssize_t cap = 2 * (s->live + bytes);
        cap = cap < ARENA_MIN ? ARENA_MIN : cap;
        char *arena = PyMem_Malloc((size_t)cap);
        if (arena == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        Py_ssize_t len = 0;
        for (Py_ssize_t i = 0; i < s->count; i++) {
            TextLevel *level = &s->levels[i];
            memcpy(arena + len, s->arena + level->text, (size_t)level->text_len);
            level->text = len;
            len += level->text_len;
        }
        PyMem_Free(s->arena);
        s->arena = arena;
        s->arena_len = len;
        s->arena_cap = cap;
    }
    return 0;
}

/* Index of the first level whose key is >= `key`. */
static inline Py_ssize_t
tside_search(const TextSide *s, double key)
{
    Py_ssize_t lo = 0, hi = s->count;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (s->levels[mid].key < key) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo;
}

/* Write a level's size and "price:size" text: over its old text where the new one fits (the
 * common case: a size changed to one of as many digits), else at the end of the arena. */
static inline void
tside_write(TextSide *s, TextLevel *level, int existing, double size, const LevelText *t)
{
    Py_ssize_t len = t->price_len + 1 + t->size_len;
    if (existing) {
        s->live -= level->text_len;
    }
    if (!existing || len > level->text_len) {
        level->text = s->arena_len;
        s->arena_len += len;
    }
    level->size = size;
    level->text_len = len;
    s->live += len;
    char *text = s->arena + level->text;
    memcpy(text, t->price, (size_t)t->price_len);
    text[t->price_len] = ':';
    memcpy(text + t->price_len + 1, t->size, (size_t)t->size_len);
}

/* Set one level (size 0 deletes it) with its text; room was reserved. */
static void
tside_set(TextSide *s, double key, double size, const LevelText *t)
{
    key += 0.0; /* -0.0 and 0.0 are one price */
    Py_ssize_t i = tside_search(s, key);
    int found = i < s->count && s->levels[i].key == key;
    TextLevel *level = &s->levels[i];
    if (size == 0.0) {
        if (found) {
            s->live -= level->text_len;
            memmove(level, level + 1, (size_t)(s->count - i - 1) * sizeof(TextLevel));
            s->count--;
        }
        return;
    }
    if (!found) {
        memmove(level + 1, level, (size_t)(s->count - i) * sizeof(TextLevel));
        s->count++;
        level->key = key;
    }
    tside_write(s, level, found, size, t);
}

/* Apply one side of a message: `n` (price, size) pairs and their texts; keys are sign * price.
 * A side that is empty (a snapshot's) and whose levels come in strictly monotone order (OKX sends
 * snapshots best first) is filled in one pass: inserted one by one, each level would go below all
 * the others and move them, 400 x 200 levels of memmove a side. */
static void
tside_apply(TextSide *s, const double *pairs, const LevelText *texts, Py_ssize_t n, double sign)
{
    if (s->count == 0 && n > 1) {
        int up = sign * pairs[2] > sign * pairs[0];
        Py_ssize_t i = 1;
        while (i < n && (up ? sign * pairs[2 * i] > sign * pairs[2 * i - 2]
                            : sign * pairs[2 * i] < sign * pairs[2 * i - 2])) {
            i++;
        }
        if (i == n) {
            for (Py_ssize_t j = 0; j < n; j++) {
                Py_ssize_t k = up ? j : n - 1 - j; /* ascending keys: the best level last */
                if (pairs[2 * k + 1] != 0.0) {
                    TextLevel *level = &s->levels[s->count++];
                    level->key = sign * pairs[2 * k] + 0.0;
                    tside_write(s, level, 0, pairs[2 * k + 1], &texts[k]);
                }
            }
            return;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        tside_set(s, sign * pairs[2 * i], pairs[2 * i + 1], &texts[i]);
    }
}

/* The i-th best level of a side (0: the best); i < count. */
static inline const TextLevel *
tside_nth(const TextSide *s, Py_ssize_t i)
{
    return &s->levels[s->count - 1 - i];
}

typedef struct {
    PyObject_HEAD
    TextSide bids;
    TextSide asks;
    Scratch scratch;
    Conversion conversion;
    char *line; /* the checksum's text */
    Py_ssize_t line_cap;
    int busy; /* in apply_json: to_base (Python) may run, and must not apply another message */
} TextBook;

static int
textbook_init(TextBook *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"contract", NULL};
    PyObject *contract = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:TextBook", names, &contract)) {
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "TextBook: re-initialized while applying a message");
        return -1;
    }
    Conversion k = {0, NULL, 1.0, 1.0, 0, 0, 0};
    if (contract != Py_None) {
        k.active = 1;
        PyObject *num = NULL, *scale = NULL;
        int inverse = -1;
        PyObject *inverse_obj = PyObject_GetAttrString(contract, "inverse");
        if (inverse_obj != NULL) {
            inverse = PyObject_IsTrue(inverse_obj);
            Py_DECREF(inverse_obj);
        }
        if (inverse < 0 || (num = PyObject_GetAttrString(contract, "num")) == NULL
            || (scale = PyObject_GetAttrString(contract, "scale")) == NULL
            || (k.to_base = PyObject_GetAttrString(contract, "to_base")) == NULL) {
            Py_XDECREF(num);
            Py_XDECREF(scale);
            return -1;
        }
        k.inverse = inverse;
        k.num = PyFloat_AsDouble(num);
        k.scale = k.num == -1.0 && PyErr_Occurred() ? -1.0 : PyFloat_AsDouble(scale);
        if (PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
                Py_DECREF(num);
                Py_DECREF(scale);
                Py_DECREF(k.to_base);
                return -1;
            }
            PyErr_Clear();
            k.python_only = 1;
        }
        k.exact = PyLong_CheckExact(num) && PyLong_CheckExact(scale) && k.num >= 1.0 && k.num < EXACT_INTEGER
                  && k.scale >= 1.0 && k.scale < EXACT_INTEGER;
        Py_DECREF(num);
        Py_DECREF(scale);
    }
    Py_XSETREF(self->conversion.to_base, NULL);
    self->conversion = k;
    tside_clear(&self->bids);
    tside_clear(&self->asks);
    return 0;
}

static int
textbook_traverse(TextBook *self, visitproc visit, void *arg)
{
    Py_VISIT(self->conversion.to_base);
    return 0;
}

static int
textbook_clear_refs(TextBook *self)
{
    Py_CLEAR(self->conversion.to_base);
    return 0;
}

static void
textbook_dealloc(TextBook *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->conversion.to_base);
    tside_free(&self->bids);
    tside_free(&self->asks);
    scratch_free(&self->scratch);
    PyMem_Free(self->line);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The natives of `n` parsed levels as a list of floats. */
static PyObject *
native_list(const LevelText *texts, Py_ssize_t n)
{
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list != NULL && i < n; i++) {
        PyObject *number = PyFloat_FromDouble(texts[i].native);
        if (number == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, number);
    }
    return list;
}

/* Convert, reserve room for and apply the parsed levels (bids first); the book is changed only
 * when nothing can fail any more. */
static int
textbook_apply_parsed(TextBook *self, Py_ssize_t n_bids, Py_ssize_t n_asks)
{
    Scratch *scratch = &self->scratch;
    double *pairs = scratch->pairs;
    LevelText *texts = scratch->texts;
    Py_ssize_t n = n_bids + n_asks;
    for (Py_ssize_t i = 0; i < n; i++) {
        texts[i].native = pairs[2 * i + 1];
    }
    if (self->conversion.active) {
        for (Py_ssize_t i = 0; i < n; i++) {
            if (pairs[2 * i + 1] != 0.0 && to_base_units(&self->conversion, &texts[i], pairs[2 * i],
                                                         i < n_bids ? "bid" : "ask", &pairs[2 * i + 1]) < 0) {
                return -1;
            }
        }
    }
    Py_ssize_t bid_bytes = 0, ask_bytes = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        *(i < n_bids ? &bid_bytes : &ask_bytes) += texts[i].price_len + 1 + texts[i].size_len;
    }
    if (tside_reserve(&self->bids, n_bids, bid_bytes) < 0 || tside_reserve(&self->asks, n_asks, ask_bytes) < 0) {
        return -1;
    }
    tside_apply(&self->bids, pairs, texts, n_bids, 1.0);
    tside_apply(&self->asks, pairs + 2 * n_bids, texts + n_bids, n_asks, -1.0);
    return 0;
}

PyDoc_STRVAR(textbook_apply_json_doc,
"apply_json(bids, asks) -> (bids, asks, bids_native, asks_native, inexact)\n\n"
"Parse and apply one message's raw JSON level arrays ([[\"price\", \"size\", ...], ...]: fields\n"
"after the size are skipped; any object with the buffer protocol, such as msgspec.Raw), keeping\n"
"each level's price and size text. Returns the levels packed as L2Book.apply_json does, sizes in\n"
"base units where the book has a contract; the sizes as sent (lists of float) where it has one,\n"
"else None; and whether a decimal had more than 15 significant digits. A size of 0 deletes the\n"
"level. Malformed input raises ValueError, a contract's size that cannot be converted\n"
"ZeroDivisionError (inverse, price 0) or what Contract.to_base raises; the book is then as it\n"
"was.");

static PyObject *
textbook_apply_json(TextBook *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_json takes the bids and asks JSON");
        return NULL;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "TextBook.apply_json called again while applying a message");
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
    self->busy = 1;
    int inexact = 0;
    Scratch *scratch = &self->scratch;
    scratch->with_texts = 1; /* before its first reserve: set here, as TextBook.__new__ alone makes a book too */
    scratch->len = 0;
    Cursor bids = {bid_buf.buf, bid_buf.buf, (const char *)bid_buf.buf + bid_buf.len, "bid"};
    Cursor asks = {ask_buf.buf, ask_buf.buf, (const char *)ask_buf.buf + ask_buf.len, "ask"};
    Py_ssize_t n_bids = parse_side(&bids, scratch, &inexact, 1);
    Py_ssize_t n_asks = n_bids < 0 ? -1 : parse_side(&asks, scratch, &inexact, 1);
    int failed = n_asks < 0;
    if (!failed) {
        double *values = scratch->pairs;
        const unsigned char *scales = scratch->scales;
        for (Py_ssize_t i = 0; i < 2 * scratch->len; i++) {
            values[i] /= POW10[scales[i]];
        }
        /* the level texts point into the buffers: applied before they are released */
        failed = textbook_apply_parsed(self, n_bids, n_asks) < 0;
    }
    PyBuffer_Release(&bid_buf);
    PyBuffer_Release(&ask_buf);
    self->busy = 0;
    if (failed) {
        return NULL;
    }
    PyObject *sides = packed_sides(scratch, n_bids, n_asks);
    if (sides == NULL) {
        return NULL;
    }
    PyObject *bids_native = Py_NewRef(Py_None), *asks_native = Py_NewRef(Py_None);
    if (self->conversion.active) {
        Py_SETREF(bids_native, native_list(scratch->texts, n_bids));
        Py_SETREF(asks_native, bids_native ? native_list(scratch->texts + n_bids, n_asks) : NULL);
    }
    PyObject *result = NULL;
    if (bids_native != NULL && asks_native != NULL) {
        result = PyTuple_Pack(5, PyTuple_GET_ITEM(sides, 0), PyTuple_GET_ITEM(sides, 1), bids_native, asks_native,
                              inexact ? Py_True : Py_False);
    }
    Py_DECREF(sides);
    Py_XDECREF(bids_native);
    Py_XDECREF(asks_native);
    return result;
}

static Py_ssize_t
depth_arg(PyObject *arg)
{
    Py_ssize_t depth = PyLong_AsSsize_t(arg);
    if (depth < 0 && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "depth must be >= 0");
    }
    return depth;
}

PyDoc_STRVAR(textbook_checksum_doc,
"checksum(depth) -> int\n\n"
"OKX's book checksum: CRC32 of the best `depth` bids and asks interleaved, each level as the\n"
"venue wrote its price and size, all joined by ':' (bidPx:bidSz:askPx:askSz:...; the longer side's\n"
"remaining levels follow where one side has fewer), as a signed 32-bit integer.");

static PyObject *
textbook_checksum(TextBook *self, PyObject *arg)
{
    Py_ssize_t depth = depth_arg(arg);
    if (depth < 0) {
        return NULL;
    }
    Py_ssize_t n_bids = depth < self->bids.count ? depth : self->bids.count;
    Py_ssize_t n_asks = depth < self->asks.count ? depth : self->asks.count;
    Py_ssize_t need = 1;
    for (Py_ssize_t i = 0; i < n_bids; i++) {
        need += tside_nth(&self->bids, i)->text_len + 1;
    }
    for (Py_ssize_t i = 0; i < n_asks; i++) {
        need += tside_nth(&self->asks, i)->text_len + 1;
    }
    if (need > self->line_cap) {
        Py_ssize_t cap = need < ARENA_MIN ? ARENA_MIN : 2 * need;
        char *line = PyMem_Realloc(self->line, (size_t)cap);
        if (line == NULL) {
            return PyErr_NoMemory();
        }
        self->line = line;
        self->line_cap = cap;
    }
    char *p = self->line;
    for (Py_ssize_t i = 0; i < n_bids || i < n_asks; i++) {
        if (i < n_bids) {
            const TextLevel *level = tside_nth(&self->bids, i);
            memcpy(p, self->bids.arena + level->text, (size_t)level->text_len);
            p += level->text_len;
            *p++ = ':';
        }
        if (i < n_asks) {
            const TextLevel *level = tside_nth(&self->asks, i);
            memcpy(p, self->asks.arena + level->text, (size_t)level->text_len);
            p += level->text_len;
            *p++ = ':';
        }
    }
    if (p > self->line) {
        p--; /* no ':' after the last level */
    }
    uint32_t crc = crc32_of((const unsigned char *)self->line, (size_t)(p - self->line));
    return PyLong_FromLongLong((long long)crc - ((crc & 0x80000000u) ? 0x100000000LL : 0));
}

static PyObject *
textbook_clear(TextBook *self, PyObject *Py_UNUSED(ignored))
{
    tside_clear(&self->bids);
    tside_clear(&self->asks);
    Py_RETURN_NONE;
}

static PyObject *
textbook_bbo(TextBook *self, PyObject *Py_UNUSED(ignored))
{
    const TextSide *b = &self->bids, *a = &self->asks;
    PyObject *items[4] = {
        b->count ? PyFloat_FromDouble(tside_nth(b, 0)->key) : Py_NewRef(Py_None),
        b->count ? PyFloat_FromDouble(tside_nth(b, 0)->size) : Py_NewRef(Py_None),
        a->count ? PyFloat_FromDouble(-tside_nth(a, 0)->key + 0.0) : Py_NewRef(Py_None),
        a->count ? PyFloat_FromDouble(tside_nth(a, 0)->size) : Py_NewRef(Py_None),
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
textbook_crossed(TextBook *self, PyObject *Py_UNUSED(ignored))
{
    const TextSide *b = &self->bids, *a = &self->asks;
    return PyBool_FromLong(b->count && a->count && tside_nth(b, 0)->key >= -tside_nth(a, 0)->key);
}

/* The best `depth` levels of a side, best first: (price, size) pairs, or their texts. */
static PyObject *
tside_top(const TextSide *s, Py_ssize_t depth, double sign, int text)
{
    Py_ssize_t n = depth < s->count ? depth : s->count;
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list != NULL && i < n; i++) {
        const TextLevel *level = tside_nth(s, i);
        PyObject *item = text ? PyUnicode_FromStringAndSize(s->arena + level->text, level->text_len)
                              : level_tuple(sign * level->key + 0.0, level->size);
        if (item == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static PyObject *
textbook_top_of(TextBook *self, PyObject *arg, int text)
{
    Py_ssize_t depth = depth_arg(arg);
    if (depth < 0) {
        return NULL;
    }
    PyObject *bids = tside_top(&self->bids, depth, 1.0, text);
    PyObject *asks = bids ? tside_top(&self->asks, depth, -1.0, text) : NULL;
    PyObject *result = asks ? PyTuple_Pack(2, bids, asks) : NULL;
    Py_XDECREF(bids);
    Py_XDECREF(asks);
    return result;
}

static PyObject *
textbook_top(TextBook *self, PyObject *arg)
{
    return textbook_top_of(self, arg, 0);
}

static PyObject *
textbook_top_text(TextBook *self, PyObject *arg)
{
    return textbook_top_of(self, arg, 1);
}

static PyObject *
tside_dict(const TextSide *s, double sign)
{
    PyObject *dict = PyDict_New();
    for (Py_ssize_t i = 0; dict != NULL && i < s->count; i++) {
        PyObject *price = PyFloat_FromDouble(sign * s->levels[i].key + 0.0);
        PyObject *size = PyFloat_FromDouble(s->levels[i].size);
        if (price == NULL || size == NULL || PyDict_SetItem(dict, price, size) < 0) {
            Py_CLEAR(dict);
        }
        Py_XDECREF(price);
        Py_XDECREF(size);
    }
    return dict;
}

static PyObject *
textbook_get_bids(TextBook *self, void *Py_UNUSED(closure))
{
    return tside_dict(&self->bids, 1.0);
}

static PyObject *
textbook_get_asks(TextBook *self, void *Py_UNUSED(closure))
{
    return tside_dict(&self->asks, -1.0);
}

static PyObject *
textbook_get_best_bid(TextBook *self, void *Py_UNUSED(closure))
{
    return self->bids.count ? PyFloat_FromDouble(tside_nth(&self->bids, 0)->key) : Py_NewRef(Py_None);
}

static PyObject *
textbook_get_best_ask(TextBook *self, void *Py_UNUSED(closure))
{
    return self->asks.count ? PyFloat_FromDouble(-tside_nth(&self->asks, 0)->key + 0.0) : Py_NewRef(Py_None);
}

static Py_ssize_t
textbook_len(TextBook *self)
{
    return self->bids.count + self->asks.count;
}

static PyMethodDef textbook_methods[] = {
    {"apply_json", (PyCFunction)(void (*)(void))textbook_apply_json, METH_FASTCALL, textbook_apply_json_doc},
    {"checksum", (PyCFunction)textbook_checksum, METH_O, textbook_checksum_doc},
    {"clear", (PyCFunction)textbook_clear, METH_NOARGS, "Remove every level."},
    {"bbo", (PyCFunction)textbook_bbo, METH_NOARGS,
     "(bid price, bid size, ask price, ask size); None for an empty side."},
    {"crossed", (PyCFunction)textbook_crossed, METH_NOARGS, "Best bid at or above best ask."},
    {"top", (PyCFunction)textbook_top, METH_O,
     "top(depth) -> (bids, asks)\n\nThe best `depth` levels per side as (price, size), best first."},
    {"top_text", (PyCFunction)textbook_top_text, METH_O,
     "top_text(depth) -> (bids, asks)\n\nThe best `depth` levels per side as the venue's \"price:size\" text, "
     "best first."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef textbook_getset[] = {
    {"bids", (getter)textbook_get_bids, NULL, "A dict copy of the bid side: price -> size.", NULL},
    {"asks", (getter)textbook_get_asks, NULL, "A dict copy of the ask side: price -> size.", NULL},
    {"best_bid", (getter)textbook_get_best_bid, NULL, "The best bid price, or None.", NULL},
    {"best_ask", (getter)textbook_get_best_ask, NULL, "The best ask price, or None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods textbook_as_sequence = {
    .sq_length = (lenfunc)textbook_len,
};

static PyTypeObject TextBookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "normalize._l2book.TextBook",
    .tp_doc = PyDoc_STR("TextBook(contract=None)\n\n"
                        "An L2 book that keeps each level's price and size text, each side sorted, for checksums "
                        "over the best levels in the venue's own text (OKX's). With a contract (num, scale, "
                        "inverse and to_base, as normalize.venues.okx.instruments.Contract has them), sizes "
                        "are contracts, converted to base units as Contract.to_base does; len() is the number "
                        "of levels held."),
    .tp_basicsize = sizeof(TextBook),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)textbook_init,
    .tp_dealloc = (destructor)textbook_dealloc,
    .tp_traverse = (traverseproc)textbook_traverse,
    .tp_clear = (inquiry)textbook_clear_refs,
    .tp_methods = textbook_methods,
    .tp_getset = textbook_getset,
    .tp_as_sequence = &textbook_as_sequence,
};

static PyMethodDef module_methods[] = {
    {"parse_decimals", (PyCFunction)(void (*)(void))parse_decimals, METH_FASTCALL, parse_decimals_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "normalize._l2book",
    .m_doc = "The per-symbol L2 books in C (L2Book; TextBook, which keeps the venue's text for checksums), and "
             "their exact decimal parser: see normalize.book and normalize.decimals.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__l2book(void)
{
    if (PyType_Ready(&BookType) < 0 || PyType_Ready(&TextBookType) < 0) {
        return NULL;
    }
    crc32_init();
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "L2Book", (PyObject *)&BookType) < 0
        || PyModule_AddObjectRef(m, "TextBook", (PyObject *)&TextBookType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
