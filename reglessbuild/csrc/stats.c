/* A replay's look at the files a kept run read (replay.py): each path's stat against the one kept,
 * on this thread with the GIL released (the registry's answers are awaited on others meanwhile). */
#include "native.h"

#include <errno.h>
#include <sys/stat.h>

/* same_stats(paths, follow, want) -> the index of the first path whose stat differs, or -1.
 * paths: the paths' bytes, each ended by a NUL; follow: a byte a path (1: stat, 0: lstat);
 * want: six int64 a path (dev, ino, mode, size, mtime ns, ctime ns), all -1 for a path that was missing. */
PyObject *py_same_stats(PyObject *self, PyObject *args) {
    Py_buffer paths, follow, want;
    if (!PyArg_ParseTuple(args, "y*y*y*", &paths, &follow, &want)) return NULL;
    Py_ssize_t n = follow.len, differs = -1;
    if (want.len != n * 6 * (Py_ssize_t)sizeof(int64_t)) {
        PyBuffer_Release(&paths); PyBuffer_Release(&follow); PyBuffer_Release(&want);
        PyErr_SetString(PyExc_ValueError, "want must hold six int64 for each path");
        return NULL;
    }
    const char *p = paths.buf, *end = p + paths.len;
    const unsigned char *fl = follow.buf;
    const int64_t *w = want.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++, w += 6) {
        const char *nul = memchr(p, 0, (size_t)(end - p));
        if (!nul) { differs = i; break; }
        struct stat st;
        int rc = fl[i] ? stat(p, &st) : lstat(p, &st);
        p = nul + 1;
        if (rc < 0) {
            if ((errno == ENOENT || errno == ENOTDIR) && w[0] == -1) continue;  /* still missing */
            differs = i;
            break;
        }
        int64_t got[6] = {(int64_t)st.st_dev, (int64_t)st.st_ino, (int64_t)st.st_mode, (int64_t)st.st_size,
                          (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
                          (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec};
        if (memcmp(got, w, sizeof(got)) != 0) { differs = i; break; }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&paths); PyBuffer_Release(&follow); PyBuffer_Release(&want);
    return PyLong_FromSsize_t(differs);
}
