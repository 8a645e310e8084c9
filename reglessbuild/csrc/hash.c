/* The per-file loop of hashing (hashing/python_engine.py's PythonEngine.hash, in C): each entry's memo
 * record checked against an lstat, any other file opened, fstat-ed and read, on threads with the GIL
 * released; the InputFiles and the new memo records made at the end. */
#include "native.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

atomic_ullong files_opened;

typedef struct {
    PyObject *path;       /* bytes: absolute path (owned) */
    int is_link;
    int has_memo;
    int64_t key[4];       /* size, mtime_ns, ctime_ns, inode of the memo record */
    PyObject *memo_digest; /* the record's digest (borrowed from the memo, which outlives the call) */
    const unsigned char *memo_raw; /* or its 16 bytes, in a packed record (borrowed too) */
    /* results */
    int err;              /* errno, or 0 */
    int read_it;          /* the content was read (not taken from the memo) */
    int executable;
    int64_t st[4];        /* the stat key of what was read */
    uint64_t nread;
    XXH128_hash_t digest;
} Job;

typedef struct {
    Job *jobs;
    size_t n;
    atomic_size_t next;
    atomic_size_t done;
    atomic_ullong bytes;
    atomic_int cancel;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int running;
} Pool;

#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)

static void stat_key(const struct stat *st, int64_t key[4]) {
    key[0] = (int64_t)st->st_size;
    key[1] = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    key[2] = (int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
    key[3] = (int64_t)st->st_ino;
}

/* open, fstat, read to the end of the file whatever its size was at open, hash */
static int hash_file(Job *j, char *buf, Pool *pool) {
    int fd = open(PyBytes_AS_STRING(j->path), OPEN_FLAGS);
    if (fd < 0) return errno;
    atomic_fetch_add_explicit(&files_opened, 1, memory_order_relaxed);
    struct stat st;
    if (fstat(fd, &st) < 0) { int e = errno; close(fd); return e; }
    if (!S_ISREG(st.st_mode)) { close(fd); return EINVAL; }
    size_t want = (size_t)st.st_size + 1;
    uint64_t n = 0;
    if (want <= CHUNK) {  /* most files: one read sized by fstat (a short read is the end of the file) */
        ssize_t k;
        do { k = read(fd, buf, want); } while (k < 0 && errno == EINTR);
        if (k < 0) { int e = errno; close(fd); return e; }
        if ((size_t)k < want) {
            j->digest = XXH3_128bits(buf, (size_t)k);
            n = (uint64_t)k;
            goto finish;
        }
        n = (uint64_t)k;  /* it grew since it was opened: go on streaming */
    }
    XXH3_state_t state;
    XXH3_128bits_reset(&state);
    if (n) XXH3_128bits_update(&state, buf, (size_t)n);
    for (;;) {
        if (atomic_load_explicit(&pool->cancel, memory_order_relaxed)) { close(fd); return EINTR; }
        ssize_t k = read(fd, buf, CHUNK);
        if (k < 0) {
            if (errno == EINTR) continue;
            int e = errno; close(fd); return e;
        }
        if (k == 0) break;
        XXH3_128bits_update(&state, buf, (size_t)k);
        n += (uint64_t)k;
    }
    j->digest = XXH3_128bits_digest(&state);
finish:
    close(fd);
    stat_key(&st, j->st);
    j->executable = (st.st_mode & 0100) != 0;
    j->nread = n;
    j->read_it = 1;
    atomic_fetch_add_explicit(&pool->bytes, n, memory_order_relaxed);
    return 0;
}

static void run_job(Job *j, char *buf, Pool *pool) {
    const char *path = PyBytes_AS_STRING(j->path);
    if (j->is_link) {
        ssize_t k = readlink(path, buf, CHUNK);
        if (k < 0) { j->err = errno; return; }
        j->digest = XXH3_128bits(buf, (size_t)k);
        return;
    }
    if (j->has_memo) {  /* a record to check: stat the path, read nothing if it matches */
        struct stat st;
        if (lstat(path, &st) < 0) { j->err = errno; return; }
        int64_t key[4];
        stat_key(&st, key);
        if (memcmp(key, j->key, sizeof key) == 0) {
            j->executable = (st.st_mode & 0100) != 0;
            return;
        }
    }
    j->err = hash_file(j, buf, pool);
}

#define BATCH 64

static void *worker(void *arg) {
    Pool *pool = arg;
    char *buf = malloc(CHUNK + 1);
    for (;;) {
        size_t start = atomic_fetch_add(&pool->next, BATCH);
        if (start >= pool->n || atomic_load(&pool->cancel)) break;
        size_t end = start + BATCH < pool->n ? start + BATCH : pool->n;
        for (size_t i = start; i < end; i++) {
            if (!buf) pool->jobs[i].err = ENOMEM;
            else run_job(&pool->jobs[i], buf, pool);
        }
        atomic_fetch_add(&pool->done, end - start);
    }
    free(buf);
    pthread_mutex_lock(&pool->lock);
    pool->running--;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* 16 digest bytes as the 32 hex digits of xxhash's hexdigest() */
static PyObject *hex_str(const unsigned char digest[16]) {
    static const char digits[] = "0123456789abcdef";
    char out[32];
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[digest[i] >> 4];
        out[2 * i + 1] = digits[digest[i] & 15];
    }
    return PyUnicode_FromStringAndSize(out, 32);
}

/* a memo record that is (tuple of 4 ints, str) whose key matches none -> -1 unusable; 0 usable */
static int memo_record(PyObject *hit, Job *j) {
    if (!PyTuple_CheckExact(hit) || PyTuple_GET_SIZE(hit) != 2) return -1;
    PyObject *key = PyTuple_GET_ITEM(hit, 0), *digest = PyTuple_GET_ITEM(hit, 1);
    if (!PyTuple_CheckExact(key) || PyTuple_GET_SIZE(key) != 4 || !PyUnicode_CheckExact(digest)) return -1;
    for (int i = 0; i < 4; i++) {
        PyObject *v = PyTuple_GET_ITEM(key, i);
        if (!PyLong_CheckExact(v)) return -1;
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || (x == -1 && PyErr_Occurred())) { PyErr_Clear(); return -1; }
        j->key[i] = (int64_t)x;
    }
    j->memo_digest = digest;
    return 0;
}

static PyObject *key_tuple(const int64_t k[4]) {
    return Py_BuildValue("(LLLL)", (long long)k[0], (long long)k[1], (long long)k[2], (long long)k[3]);
}

/* hash(entries, known, now_ns, racy_ns, threads, file_type, progress)
 *   -> (files, records, bytes read, files read); raises OSError(errno, strerror, entry.abspath) for the
 *   first entry that could not be read
 * entries: hashing.port.Entry (files and symlinks); known: {folder: {name: (stat key, digest)} or the
 * folder's packed record (statmemo.pack)}. The same contract as PythonEngine.hash. */
PyObject *py_hash(PyObject *self, PyObject *args) {
    PyObject *entries, *known, *ftype, *progress;
    long long now, racy;
    int threads;
    if (!PyArg_ParseTuple(args, "O!O!LLiOO", &PyList_Type, &entries, &PyDict_Type, &known, &now, &racy,
                          &threads, &ftype, &progress))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(entries);
    Job *jobs = calloc(n ? (size_t)n : 1, sizeof(Job));
    if (!jobs) return PyErr_NoMemory();
    PyObject *out = NULL, *symlink = NULL, *file = NULL;
    Py_ssize_t filled = 0;
    for (Py_ssize_t i = 0; i < n; i++, filled++) {
        PyObject *e = PyList_GET_ITEM(entries, i);
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 5) { PyErr_SetString(PyExc_TypeError, "not an Entry"); goto done; }
        Job *j = &jobs[i];
        if (!PyUnicode_FSConverter(PyTuple_GET_ITEM(e, 1), &j->path)) goto done;
        PyObject *kind = PyTuple_GET_ITEM(e, 2);
        j->is_link = PyUnicode_CompareWithASCIIString(kind, "symlink") == 0;
        if (!j->is_link) {
            PyObject *names = PyDict_GetItemWithError(known, PyTuple_GET_ITEM(e, 3));
            if (!names && PyErr_Occurred()) goto done;
            if (names && PyDict_Check(names)) {
                PyObject *hit = PyDict_GetItemWithError(names, PyTuple_GET_ITEM(e, 4));
                if (!hit && PyErr_Occurred()) goto done;
                /* checked here, not when the record is read: a damaged record is a miss, never a digest */
                if (hit && memo_record(hit, j) == 0) j->has_memo = 1;
            } else if (names && PyBytes_Check(names)) {  /* a packed record, as the index keeps it */
                PyObject *name = PyTuple_GET_ITEM(e, 4), *encoded = NULL;
                const char *s;
                Py_ssize_t len;
                if (PyUnicode_Check(name) && PyUnicode_IS_ASCII(name)) {
                    s = (const char *)PyUnicode_DATA(name);
                    len = PyUnicode_GET_LENGTH(name);
                } else {
                    if (!(encoded = PyUnicode_EncodeFSDefault(name))) goto done;
                    s = PyBytes_AS_STRING(encoded);
                    len = PyBytes_GET_SIZE(encoded);
                }
                if (memo_find((const unsigned char *)PyBytes_AS_STRING(names), (size_t)PyBytes_GET_SIZE(names),
                              s, (size_t)len, j->key, &j->memo_raw) == 0)
                    j->has_memo = 1;
                Py_XDECREF(encoded);
            }
        }
    }
    Pool pool = {.jobs = jobs, .n = (size_t)n, .running = 0};
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.cond, NULL);
    if (threads < 1) threads = 1;
    if ((Py_ssize_t)threads > n / BATCH + 1) threads = (int)(n / BATCH + 1);
    pthread_t tids[64];
    if (threads > 64) threads = 64;
    int interrupted = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int t = 0; t < threads; t++) {
        pthread_mutex_lock(&pool.lock);
        pool.running++;
        pthread_mutex_unlock(&pool.lock);
        if (pthread_create(&tids[t], NULL, worker, &pool) != 0) {
            pthread_mutex_lock(&pool.lock);
            pool.running--;
            pthread_mutex_unlock(&pool.lock);
            threads = t;
            break;
        }
    }
    if (threads == 0) {  /* no thread could start: this one does the work */
        pool.running = 1;
        worker(&pool);
    }
    pthread_mutex_lock(&pool.lock);
    while (pool.running > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&pool.cond, &pool.lock, &ts);
        if (pool.running == 0) break;
        pthread_mutex_unlock(&pool.lock);
        /* every 200 ms: let Python see signals (Ctrl-C) and report progress */
        Py_BLOCK_THREADS
        if (interrupted) { /* the exception is set: wait for the workers to stop */ }
        else if (PyErr_CheckSignals() < 0) { interrupted = 1; atomic_store(&pool.cancel, 1); }
        else if (progress != Py_None) {
            PyObject *r = PyObject_CallFunction(progress, "nK", (Py_ssize_t)atomic_load(&pool.done),
                                                (unsigned long long)atomic_load(&pool.bytes));
            if (!r) { interrupted = 1; atomic_store(&pool.cancel, 1); }
            Py_XDECREF(r);
        }
        Py_UNBLOCK_THREADS
        pthread_mutex_lock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.lock);
    for (int t = 0; t < threads; t++) pthread_join(tids[t], NULL);
    Py_END_ALLOW_THREADS
    pthread_mutex_destroy(&pool.lock);
    pthread_cond_destroy(&pool.cond);
    if (interrupted) goto done;  /* the exception is set */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (jobs[i].err) {  /* the first entry that failed, as an OSError naming its path (entry.abspath) */
            errno = jobs[i].err;
            PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, PyTuple_GET_ITEM(PyList_GET_ITEM(entries, i), 1));
            goto done;
        }
    }
    symlink = PyUnicode_InternFromString("symlink");
    file = PyUnicode_InternFromString("file");
    PyObject *files = PyList_New(n);
    PyObject *records = PyDict_New();
    unsigned long long read_bytes = 0, read_files = 0;
    if (!symlink || !file || !files || !records) { Py_XDECREF(files); Py_XDECREF(records); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) {
        Job *j = &jobs[i];
        PyObject *e = PyList_GET_ITEM(entries, i);
        PyObject *digest;
        if (!j->is_link && !j->read_it && j->memo_digest) {
            digest = j->memo_digest;
            Py_INCREF(digest);
        } else if (!j->is_link && !j->read_it) {
            digest = hex_str(j->memo_raw);
        } else {
            XXH128_canonical_t c;
            XXH128_canonicalFromHash(&c, j->digest);
            digest = hex_str(c.digest);
        }
        PyObject *item = ((PyTypeObject *)ftype)->tp_alloc((PyTypeObject *)ftype, 4);
        if (!digest || !item) { Py_XDECREF(digest); Py_XDECREF(item); goto fail; }
        PyObject *rel = PyTuple_GET_ITEM(e, 0);
        PyObject *kind = j->is_link ? symlink : file;
        PyObject *x = j->executable ? Py_True : Py_False;
        Py_INCREF(rel); Py_INCREF(kind); Py_INCREF(x);
        PyTuple_SET_ITEM(item, 0, rel);
        PyTuple_SET_ITEM(item, 1, kind);
        PyTuple_SET_ITEM(item, 2, x);
        PyTuple_SET_ITEM(item, 3, digest);
        PyList_SET_ITEM(files, i, item);
        if (j->read_it) {
            read_bytes += j->nread;
            read_files++;
            if (now - j->st[1] > racy && now - j->st[2] > racy) {
                PyObject *folder = PyTuple_GET_ITEM(e, 3);
                PyObject *names = PyDict_GetItemWithError(records, folder);
                if (!names) {
                    if (PyErr_Occurred() || !(names = PyDict_New())) goto fail;
                    int bad = PyDict_SetItem(records, folder, names) < 0;
                    Py_DECREF(names);
                    if (bad) goto fail;
                }
                PyObject *rec = Py_BuildValue("(NO)", key_tuple(j->st), digest);
                if (!rec || PyDict_SetItem(names, PyTuple_GET_ITEM(e, 4), rec) < 0) { Py_XDECREF(rec); goto fail; }
                Py_DECREF(rec);
            }
        }
    }
    out = Py_BuildValue("(NNKK)", files, records, read_bytes, read_files);
    goto done;
fail:
    Py_DECREF(files);
    Py_DECREF(records);
done:
    for (Py_ssize_t i = 0; i < filled; i++) Py_XDECREF(jobs[i].path);
    free(jobs);
    Py_XDECREF(symlink);
    Py_XDECREF(file);
    return out;
}
