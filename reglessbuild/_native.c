/* The per-file loops of hashing, in C: listing a context, stat-ing and reading its files on every core
 * (the GIL released), and encoding the files for the workspace hash.
 *
 * inputs.py keeps the meaning of every step (which entries a walk keeps, when a memo record is
 * trusted, what the hash takes in); this module only runs its loops without the interpreter, so
 * that 100,000 files cost system calls, not Python objects. inputs.py has the same loops in Python,
 * used where this module is not built, and the tests check that both give the same results.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define CHUNK (1 << 20)

static atomic_ullong files_opened;  /* files opened for their content since the module was loaded */

/* ------------------------------------------------------------------ walk */

enum { K_FILE = 0, K_DIR = 1, K_LINK = 2 };

typedef struct {
    char *rel;       /* context-relative path, bytes as on disk */
    size_t rel_len;
    size_t name_at;  /* where the name starts in rel */
    Py_ssize_t dir;  /* index into the folder list (the folder holding it) */
    int kind;
} WEntry;

typedef struct {
    WEntry *items;
    size_t n, cap;
    PyObject *folders;  /* list of str: absolute path of each folder visited */
    int unsorted_utf8;  /* a name that is not UTF-8: Python's order differs from byte order */
} Walk;

static int walk_push(Walk *w, const char *rel, size_t rel_len, size_t name_at, Py_ssize_t dir, int kind) {
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        WEntry *items = realloc(w->items, cap * sizeof(WEntry));
        if (!items) { PyErr_NoMemory(); return -1; }
        w->items = items;
        w->cap = cap;
    }
    char *copy = malloc(rel_len + 1);
    if (!copy) { PyErr_NoMemory(); return -1; }
    memcpy(copy, rel, rel_len + 1);
    w->items[w->n++] = (WEntry){copy, rel_len, name_at, dir, kind};
    return 0;
}

static void walk_free(Walk *w) {
    for (size_t i = 0; i < w->n; i++) free(w->items[i].rel);
    free(w->items);
    Py_XDECREF(w->folders);
}

static int cmp_rel(const void *a, const void *b) {
    const WEntry *x = a, *y = b;
    size_t n = x->rel_len < y->rel_len ? x->rel_len : y->rel_len;
    int c = memcmp(x->rel, y->rel, n);
    if (c) return c;
    return x->rel_len < y->rel_len ? -1 : x->rel_len > y->rel_len;
}

static int valid_utf8(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && !(s[i] & 0x80)) i++;
    if (i == n) return 1;  /* ASCII, as most names are */
    PyObject *u = PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "strict");
    if (u) { Py_DECREF(u); return 1; }
    PyErr_Clear();
    return 0;
}

static PyObject *fs_str(const char *s, size_t n);

/* ask the ignore matcher: 0 keep, 1 leave out, 2 leave out but look below (an exception may re-include) */
static int ask(PyObject *skip, const char *rel, size_t rel_len, int is_dir) {
    if (skip == Py_None) return 0;
    PyObject *path = fs_str(rel, rel_len);
    if (!path) return -1;
    PyObject *r = PyObject_CallFunctionObjArgs(skip, path, is_dir ? Py_True : Py_False, NULL);
    Py_DECREF(path);
    if (!r) return -1;
    long v = PyLong_AsLong(r);
    Py_DECREF(r);
    if (v == -1 && PyErr_Occurred()) return -1;
    return (int)v;
}

/* One folder: its entries in readdir order; sub-folders are walked after it (an explicit stack). */
static int walk_tree(Walk *w, const char *root, size_t root_len, PyObject *skip) {
    typedef struct { char *rel; size_t len; } Todo;
    Todo *stack = malloc(sizeof(Todo) * 64);
    size_t top = 0, cap = 64;
    int rc = -1;
    if (!stack) { PyErr_NoMemory(); return -1; }
    char *empty = strdup("");
    if (!empty) { free(stack); PyErr_NoMemory(); return -1; }
    stack[top++] = (Todo){empty, 0};
    char *path = NULL;
    size_t path_cap = 0;
    while (top) {
        Todo t = stack[--top];
        size_t need = root_len + 1 + t.len + 1;
        if (need > path_cap) {
            path_cap = need * 2;
            char *p = realloc(path, path_cap);
            if (!p) { free(t.rel); PyErr_NoMemory(); goto out; }
            path = p;
        }
        memcpy(path, root, root_len);
        size_t plen = root_len;
        if (t.len) {
            if (plen && path[plen - 1] != '/') path[plen++] = '/';  /* a root of "/" takes no second one */
            memcpy(path + plen, t.rel, t.len);
            plen += t.len;
        }
        path[plen] = 0;
        PyObject *folder = PyUnicode_DecodeFSDefaultAndSize(path, (Py_ssize_t)plen);
        if (!folder || PyList_Append(w->folders, folder) < 0) { Py_XDECREF(folder); free(t.rel); goto out; }
        Py_DECREF(folder);
        Py_ssize_t dir_index = PyList_GET_SIZE(w->folders) - 1;
        DIR *d = opendir(path);
        if (!d) {
            PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
            free(t.rel);
            goto out;
        }
        struct dirent *e;
        char *rel = NULL;
        size_t rel_cap = 0;
        for (;;) {
            errno = 0;  /* readdir's only way to tell its end from an error */
            if (!(e = readdir(d))) break;
            const char *name = e->d_name;
            if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]))) continue;
            size_t nlen = strlen(name);
            size_t rlen = t.len ? t.len + 1 + nlen : nlen;
            if (rlen + 1 > rel_cap) {
                rel_cap = (rlen + 1) * 2;
                char *r = realloc(rel, rel_cap);
                if (!r) { PyErr_NoMemory(); closedir(d); free(rel); free(t.rel); goto out; }
                rel = r;
            }
            size_t at = 0;
            if (t.len) { memcpy(rel, t.rel, t.len); rel[t.len] = '/'; at = t.len + 1; }
            memcpy(rel + at, name, nlen + 1);
            int type = e->d_type;
            if (type == DT_UNKNOWN) {
                struct stat st;
                if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;  /* gone */
                type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : S_ISLNK(st.st_mode) ? DT_LNK : DT_FIFO;
            }
            int kind;
            if (type == DT_DIR) kind = K_DIR;
            else if (type == DT_REG) kind = K_FILE;
            else if (type == DT_LNK) kind = K_LINK;
            else continue;  /* sockets, fifos, devices: a build cannot copy them */
            if (!w->unsorted_utf8 && !valid_utf8(name, nlen)) w->unsorted_utf8 = 1;
            int verdict = ask(skip, rel, rlen, kind == K_DIR);
            if (verdict < 0) { closedir(d); free(rel); free(t.rel); goto out; }
            if (verdict == 0 && walk_push(w, rel, rlen, at, dir_index, kind) < 0) {
                closedir(d); free(rel); free(t.rel); goto out;
            }
            if (kind == K_DIR && verdict != 1) {
                if (top == cap) {
                    cap *= 2;
                    Todo *s = realloc(stack, sizeof(Todo) * cap);
                    if (!s) { PyErr_NoMemory(); closedir(d); free(rel); free(t.rel); goto out; }
                    stack = s;
                }
                char *copy = strdup(rel);
                if (!copy) { PyErr_NoMemory(); closedir(d); free(rel); free(t.rel); goto out; }
                stack[top++] = (Todo){copy, rlen};
            }
        }
        int err = errno;
        closedir(d);
        free(rel);
        free(t.rel);
        if (err) { errno = err; PyErr_SetFromErrnoWithFilename(PyExc_OSError, path); goto out; }
    }
    rc = 0;
out:
    while (top) free(stack[--top].rel);
    free(stack);
    free(path);
    return rc;
}

/* a str from a name or path as on disk: ASCII directly (most are), else as os.fsdecode() does */
static PyObject *fs_str(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && !(s[i] & 0x80)) i++;
    if (i < n) return PyUnicode_DecodeFSDefaultAndSize(s, (Py_ssize_t)n);
    PyObject *u = PyUnicode_New((Py_ssize_t)n, 127);
    if (u) memcpy(PyUnicode_DATA(u), s, n);
    return u;
}

static const char *KIND_NAMES[] = {"file", "dir", "symlink"};

/* walk(root, skip, entry_type) -> (entries, sorted): entries as entry_type(rel, abspath, kind, folder,
 * name), in byte order of rel; `sorted` is False when a name is not UTF-8 (then Python must sort). */
static PyObject *py_walk(PyObject *self, PyObject *args) {
    PyObject *root_obj, *skip, *etype;
    if (!PyArg_ParseTuple(args, "O&OO", PyUnicode_FSConverter, &root_obj, &skip, &etype)) return NULL;
    Walk w = {0};
    PyObject *out = NULL, *kinds[3] = {0};
    const char *root = PyBytes_AS_STRING(root_obj);
    size_t root_len = (size_t)PyBytes_GET_SIZE(root_obj);
    w.folders = PyList_New(0);
    if (!w.folders) goto done;
    if (walk_tree(&w, root, root_len, skip) < 0) goto done;
    qsort(w.items, w.n, sizeof(WEntry), cmp_rel);
    for (int k = 0; k < 3; k++)
        if (!(kinds[k] = PyUnicode_InternFromString(KIND_NAMES[k]))) goto done;
    PyObject *list = PyList_New((Py_ssize_t)w.n);
    if (!list) goto done;
    char *abs = NULL;
    size_t abs_cap = 0;
    for (size_t i = 0; i < w.n; i++) {
        WEntry *e = &w.items[i];
        size_t sep = root_len && root[root_len - 1] == '/' ? 0 : 1;  /* os.path.join's rule */
        size_t alen = root_len + sep + e->rel_len;
        if (alen + 1 > abs_cap) {
            abs_cap = (alen + 1) * 2;
            char *a = realloc(abs, abs_cap);
            if (!a) { PyErr_NoMemory(); free(abs); Py_DECREF(list); goto done; }
            abs = a;
        }
        memcpy(abs, root, root_len);
        if (sep) abs[root_len] = '/';
        memcpy(abs + root_len + sep, e->rel, e->rel_len + 1);
        PyObject *rel = fs_str(e->rel, e->rel_len);
        PyObject *ap = fs_str(abs, alen);
        PyObject *name = fs_str(e->rel + e->name_at, e->rel_len - e->name_at);
        PyObject *item = ((PyTypeObject *)etype)->tp_alloc((PyTypeObject *)etype, 5);
        if (!rel || !ap || !name || !item) {
            Py_XDECREF(rel); Py_XDECREF(ap); Py_XDECREF(name); Py_XDECREF(item);
            free(abs); Py_DECREF(list); goto done;
        }
        PyObject *folder = PyList_GET_ITEM(w.folders, e->dir);
        Py_INCREF(folder);
        Py_INCREF(kinds[e->kind]);
        PyTuple_SET_ITEM(item, 0, rel);
        PyTuple_SET_ITEM(item, 1, ap);
        PyTuple_SET_ITEM(item, 2, kinds[e->kind]);
        PyTuple_SET_ITEM(item, 3, folder);
        PyTuple_SET_ITEM(item, 4, name);
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    free(abs);
    out = Py_BuildValue("(NO)", list, w.unsorted_utf8 ? Py_False : Py_True);
done:
    for (int k = 0; k < 3; k++) Py_XDECREF(kinds[k]);
    walk_free(&w);
    Py_DECREF(root_obj);
    return out;
}

/* ------------------------------------------------------------------ hashing */

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

static uint64_t rd_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void le_put(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

#define MEMO_ENTRY 56

/* The record of `name` in a folder's packed memo record (index.py: pack_memo): 0 found, -1 not (or damaged). */
static int memo_find(const unsigned char *raw, size_t len, const char *name, size_t nlen, Job *j) {
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
            for (int i = 0; i < 4; i++) j->key[i] = (int64_t)rd_le(e + 8 + 8 * i, 8);
            j->memo_raw = e + 40;
            return 0;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static PyObject *key_tuple(const int64_t k[4]) {
    return Py_BuildValue("(LLLL)", (long long)k[0], (long long)k[1], (long long)k[2], (long long)k[3]);
}

/* hash(entries, known, now_ns, racy_ns, threads, file_type, progress)
 *   -> (files, records, bytes read, files read) | (None, index of the failed entry, errno, 0)
 * entries: inputs._Entry (files and symlinks); known: {folder: {name: (stat key, digest)} or the
 * folder's packed record (index.py: pack_memo)}.
 * The same contract as inputs._hash_part, plus InputFile making. */
static PyObject *py_hash(PyObject *self, PyObject *args) {
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
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 5) { PyErr_SetString(PyExc_TypeError, "not an _Entry"); goto done; }
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
                              s, (size_t)len, j) == 0)
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
        if (jobs[i].err) {
            out = Py_BuildValue("(Onii)", Py_None, i, jobs[i].err, 0);
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

/* ------------------------------------------------------------------ the hash's file records */

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
 * _field(h, "file", path, kind, "x" or "-", digest) in inputs.py */
static PyObject *py_section(PyObject *self, PyObject *arg) {
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

/* ------------------------------------------------------------------ the memo's packed records */

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

/* pack(names) -> bytes: index.pack_memo in C (the same bytes) */
static PyObject *py_pack(PyObject *self, PyObject *names) {
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

static PyObject *py_files_opened(PyObject *self, PyObject *unused) {
    return PyLong_FromUnsignedLongLong(atomic_load(&files_opened));
}

static PyMethodDef methods[] = {
    {"files_opened", py_files_opened, METH_NOARGS, "files opened for their content since the module was loaded"},
    {"walk", py_walk, METH_VARARGS, "walk(root, skip, entry_type) -> (entries sorted by path bytes, sorted ok)"},
    {"hash", py_hash, METH_VARARGS,
     "hash(entries, known, now_ns, racy_ns, threads, file_type, progress) -> (files, records, bytes, files read)"},
    {"pack", py_pack, METH_O, "pack(names) -> a folder's memo record as index.pack_memo makes it"},
    {"section", py_section, METH_O, "section(files) -> the workspace hash's bytes for the files"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "reglessbuild._native",
                                    "The per-file loops of hashing, in C (see inputs.py).", -1, methods};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
