/* What the files of reglessbuild._native share: the C engine of hashing (reglessbuild/hashing/c_engine.py).
 *
 * The meaning of every step (which entries a walk keeps, when a memo record is trusted, what the hash
 * takes in) is decided in reglessbuild/hashing; these files only run its loops without the interpreter,
 * so that 100,000 files cost system calls, not Python objects. A property test holds them to the
 * Python engine's results.
 *
 *   walk.c     listing a context (readdir), asking the ignore rules' Skipper about each entry
 *   hash.c     the per-file loop: stat memo check, reading, xxh3-128, on threads with the GIL released
 *   memo.c     a folder's packed memo record (hashing/statmemo.py's format): lookup and packing
 *   records.c  the workspace hash's bytes for the files (hashing/recipe.py's encode_files)
 *   module.c   the module and its method table
 */
#ifndef REGLESS_NATIVE_H
#define REGLESS_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define CHUNK (1 << 20)
#define MEMO_ENTRY 56  /* bytes per file in a packed memo record */

extern atomic_ullong files_opened;  /* files opened for their content since the module was loaded */

PyObject *py_walk(PyObject *self, PyObject *args);
PyObject *py_hash(PyObject *self, PyObject *args);
PyObject *py_section(PyObject *self, PyObject *arg);
PyObject *py_pack(PyObject *self, PyObject *names);
PyObject *py_same_stats(PyObject *self, PyObject *args); /* stats.c */

/* The record of `name` in a folder's packed memo record: 0 found (its stat key and the 16 bytes of its
 * digest set), -1 not found or damaged. */
int memo_find(const unsigned char *raw, size_t len, const char *name, size_t nlen, int64_t key[4],
              const unsigned char **digest);

static inline uint64_t rd_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static inline void le_put(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

#endif
