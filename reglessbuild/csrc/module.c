/* The module reglessbuild._native: the C engine's functions (native.h says which file holds which). */
#include "native.h"

static PyObject *py_files_opened(PyObject *self, PyObject *unused) {
    return PyLong_FromUnsignedLongLong(atomic_load(&files_opened));
}

static PyMethodDef methods[] = {
    {"files_opened", py_files_opened, METH_NOARGS, "files opened for their content since the module was loaded"},
    {"walk", py_walk, METH_VARARGS, "walk(root, skip, entry_type) -> (entries sorted by path bytes, sorted ok)"},
    {"hash", py_hash, METH_VARARGS,
     "hash(entries, known, now_ns, racy_ns, threads, file_type, progress) -> (files, records, bytes, files read)"},
    {"pack", py_pack, METH_O, "pack(names) -> a folder's memo record as hashing/statmemo.py packs it"},
    {"section", py_section, METH_O, "section(files) -> the workspace hash's bytes for the files"},
    {"same_stats", py_same_stats, METH_VARARGS,
     "same_stats(paths, follow, want) -> index of the first path whose stat is not the one kept, or -1"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "reglessbuild._native",
                                    "The C engine of hashing (reglessbuild/hashing/c_engine.py).", -1, methods};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
