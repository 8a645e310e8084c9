/* A folder's packed memo record (hashing/statmemo.py says the format): looked up in place by the per-file
 * loop, and made from a dict of records as statmemo.pack makes it. */
#include "native.h"

#include <stdlib.h>

int memo_find(const unsigned char *raw, size_t len, const char *name, size_t nlen, int64_t key[4],
              const unsigned char **digest) {
    if (len < 5 || raw[0] != 2) return -1;
    uint64_t count = rd_le(raw + 1, 4);
    size_t names_at = 5 + (size_t)count * MEMO_ENTRY;
    if (names_at > len) return -1;
    size_t lo = 0, hi = (size_t)count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const unsigned char *e = raw + 5 + mid * MEMO_ENTRY;
        size_t off = (size_t)rd_le(e, 4), l = (size_t)rd_le(e + 4, 4);
        if (names_at + off + l > len) return -1;
        size_t m = l < nlen ? l : nlen;
        int c = memcmp(raw + names_at + off, name, m);
        if (c == 0) c = l < nlen ? -1 : l > nlen;
        if (c == 0) {
            for (int i = 0; i < 4; i++) key[i] = (int64_t)rd_le(e + 8 + 8 * i, 8);
            *digest = e + 40;
            return 0;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

typedef struct {
    PyObject *name;  /* bytes (owned) */
    int64_t key[3];
    uint64_t ino;
    unsigned char digest[16];
} Row;

static int cmp_row(const void *a, const void *b) {
    PyObject *x = ((const Row *)a)->name, *y = ((const Row *)b)->name;
    Py_ssize_t nx = PyBytes_GET_SIZE(x), ny = PyBytes_GET_SIZE(y);
    int c = memcmp(PyBytes_AS_STRING(x), PyBytes_AS_STRING(y), (size_t)(nx < ny ? nx : ny));
    return c ? c : (nx < ny ? -1 : nx > ny);
}

static int unhex(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* one record ((size, mtime_ns, ctime_ns, inode), 32 hex digits) -> 0, or -1 when damaged (then dropped) */
static int row_of(PyObject *rec, Row *r) {
    if (!PyTuple_Check(rec) || PyTuple_GET_SIZE(rec) != 2) return -1;
    PyObject *key = PyTuple_GET_ITEM(rec, 0), *digest = PyTuple_GET_ITEM(rec, 1);
    if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) != 4 || !PyUnicode_Check(digest)) return -1;
    for (int i = 0; i < 4; i++)
        if (!PyLong_Check(PyTuple_GET_ITEM(key, i))) return -1;
    for (int i = 0; i < 3; i++) {
        int overflow = 0;
        r->key[i] = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(key, i), &overflow);
        if (overflow || (r->key[i] == -1 && PyErr_Occurred())) { PyErr_Clear(); return -1; }
    }
    r->ino = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(key, 3));
    if (r->ino == (uint64_t)-1 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
    Py_ssize_t n;
    const char *hex = PyUnicode_AsUTF8AndSize(digest, &n);
    if (!hex) { PyErr_Clear(); return -1; }
    if (n != 32) return -1;
    for (int i = 0; i < 16; i++) {
        int hi = unhex((unsigned char)hex[2 * i]), lo = unhex((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        r->digest[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* pack(names) -> bytes: statmemo.pack in C (the same bytes) */
PyObject *py_pack(PyObject *self, PyObject *names) {
    if (!PyDict_Check(names)) { PyErr_SetString(PyExc_TypeError, "pack() takes a dict"); return NULL; }
    Py_ssize_t cap = PyDict_GET_SIZE(names), count = 0, pos = 0;
    Row *rows = calloc(cap ? (size_t)cap : 1, sizeof(Row));
    if (!rows) return PyErr_NoMemory();
    PyObject *out = NULL, *name, *rec;
    size_t names_len = 0;
    while (PyDict_Next(names, &pos, &name, &rec)) {
        Row *r = &rows[count];
        if (!PyUnicode_Check(name) || row_of(rec, r) < 0) continue;
        if (!(r->name = PyUnicode_EncodeFSDefault(name))) goto done;
        names_len += (size_t)PyBytes_GET_SIZE(r->name);
        count++;
    }
    qsort(rows, (size_t)count, sizeof(Row), cmp_row);
    size_t total = 5 + (size_t)count * MEMO_ENTRY + names_len;
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (!out) goto done;
    unsigned char *w = (unsigned char *)PyBytes_AS_STRING(out), *nw = w + 5 + (size_t)count * MEMO_ENTRY;
    w[0] = 2;
    le_put(w + 1, (uint64_t)count, 4);
    w += 5;
    size_t at = 0;
    for (Py_ssize_t i = 0; i < count; i++, w += MEMO_ENTRY) {
        Row *r = &rows[i];
        size_t l = (size_t)PyBytes_GET_SIZE(r->name);
        le_put(w, at, 4);
        le_put(w + 4, l, 4);
        for (int k = 0; k < 3; k++) le_put(w + 8 + 8 * k, (uint64_t)r->key[k], 8);
        le_put(w + 32, r->ino, 8);
        memcpy(w + 40, r->digest, 16);
        memcpy(nw + at, PyBytes_AS_STRING(r->name), l);
        at += l;
    }
done:
    for (Py_ssize_t i = 0; i < count; i++) Py_XDECREF(rows[i].name);
    if (count < cap) Py_XDECREF(rows[count].name);
    free(rows);
    return out;
}
