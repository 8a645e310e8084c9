/* The workspace hash's bytes for the files (hashing/recipe.py: encode_files), in C. */
#include "native.h"

/* A path's bytes as on disk (os.fsencode): UTF-8, or for a name that is not UTF-8 its bytes back from
 * the surrogate escapes; *raw holds them then (the caller releases it). */
static const char *path_bytes(PyObject *path, Py_ssize_t *n, PyObject **raw) {
    const char *s = PyUnicode_AsUTF8AndSize(path, n);
    if (s || !PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return s;
    PyErr_Clear();
    if (!(*raw = PyUnicode_EncodeFSDefault(path))) return NULL;
    *n = PyBytes_GET_SIZE(*raw);
    return PyBytes_AS_STRING(*raw);
}

/* section(files) -> bytes: for each InputFile, the bytes of
 * _field(h, "file", path, kind, "x" or "-", digest) in hashing/recipe.py */
PyObject *py_section(PyObject *self, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "files must be a sequence");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    size_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *f = items[i];
        if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) != 4) { PyErr_SetString(PyExc_TypeError, "not an InputFile"); goto fail; }
        Py_ssize_t pl, dl, kl;
        if (!PyUnicode_Check(PyTuple_GET_ITEM(f, 0)) || !PyUnicode_Check(PyTuple_GET_ITEM(f, 1)) ||
            !PyUnicode_Check(PyTuple_GET_ITEM(f, 3))) { PyErr_SetString(PyExc_TypeError, "not an InputFile"); goto fail; }
        PyObject *raw = NULL;
        if (!path_bytes(PyTuple_GET_ITEM(f, 0), &pl, &raw)) goto fail;
        Py_XDECREF(raw);
        if (!PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(f, 1), &kl)) goto fail;
        if (!PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(f, 3), &dl)) goto fail;
        total += 8 + 4 + 8 + (size_t)pl + 8 + (size_t)kl + 8 + 1 + 8 + (size_t)dl;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (!out) goto fail;
    unsigned char *w = (unsigned char *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *f = items[i];
        Py_ssize_t pl, kl, dl;
        PyObject *raw = NULL;
        const char *path = path_bytes(PyTuple_GET_ITEM(f, 0), &pl, &raw);
        if (!path) { Py_DECREF(out); goto fail; }
        const char *kind = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(f, 1), &kl);
        const char *digest = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(f, 3), &dl);
        int x = PyObject_IsTrue(PyTuple_GET_ITEM(f, 2));
        if (x < 0) { Py_XDECREF(raw); Py_DECREF(out); goto fail; }
        le_put(w, 4, 8); memcpy(w + 8, "file", 4); w += 12;
        le_put(w, (uint64_t)pl, 8); memcpy(w + 8, path, (size_t)pl); w += 8 + pl;
        le_put(w, (uint64_t)kl, 8); memcpy(w + 8, kind, (size_t)kl); w += 8 + kl;
        le_put(w, 1, 8); w[8] = x ? 'x' : '-'; w += 9;
        le_put(w, (uint64_t)dl, 8); memcpy(w + 8, digest, (size_t)dl); w += 8 + dl;
        Py_XDECREF(raw);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(seq);
    return NULL;
}
