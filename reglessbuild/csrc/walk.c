/* Listing a context: readdir over an explicit stack of folders, each entry asked of the ignore rules'
 * Skipper (hashing/ignore.py) before it is kept or walked into, but for a file that no rule can match
 * (its path ends with none of the rules' `tails`, in a folder nothing matched): sorted by the bytes of
 * its path. */
#include "native.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>

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

static PyObject *fs_str(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && !(s[i] & 0x80)) i++;
    if (i < n) return PyUnicode_DecodeFSDefaultAndSize(s, (Py_ssize_t)n);
    PyObject *u = PyUnicode_New((Py_ssize_t)n, 127);
    if (u) memcpy(PyUnicode_DATA(u), s, n);
    return u;
}

/* ask the ignore rules' Skipper: its Verdict, an int (0 keep, 1 leave out, 2 leave out but look below), or -1 */
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

/* What a file's path must end with for a rule to match it (the Skipper's `tails`, bytes): in a folder
 * the Skipper calls plain, a file whose path ends with none of them is kept without asking. */
typedef struct {
    PyObject *held;   /* the tuple of bytes (owned), or NULL: ask about every entry */
    PyObject *plain;  /* skip.plain (owned) */
} Tails;

static int tails_get(Tails *t, PyObject *skip) {
    t->held = t->plain = NULL;
    if (skip == Py_None) return 0;
    PyObject *tails = PyObject_GetAttrString(skip, "tails");
    if (!tails) {  /* a Skipper without them (a test's callable): ask about everything */
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
        PyErr_Clear();
        return 0;
    }
    if (!PyTuple_Check(tails)) { Py_DECREF(tails); return 0; }  /* None: some rule ends in a wildcard */
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tails); i++)
        if (!PyBytes_Check(PyTuple_GET_ITEM(tails, i)) || PyBytes_GET_SIZE(PyTuple_GET_ITEM(tails, i)) == 0) {
            Py_DECREF(tails);
            return 0;
        }
    if (!(t->plain = PyObject_GetAttrString(skip, "plain"))) { Py_DECREF(tails); return -1; }
    t->held = tails;
    return 0;
}

static void tails_free(Tails *t) {
    Py_XDECREF(t->held);
    Py_XDECREF(t->plain);
}

static int ends_with_a_tail(const Tails *t, const char *rel, size_t rel_len) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t->held); i++) {
        PyObject *b = PyTuple_GET_ITEM(t->held, i);
        size_t n = (size_t)PyBytes_GET_SIZE(b);
        if (n <= rel_len && memcmp(rel + rel_len - n, PyBytes_AS_STRING(b), n) == 0) return 1;
    }
    return 0;
}

/* skip.plain(folder): 1, 0, or -1 on an error */
static int ask_plain(const Tails *t, const char *rel, size_t rel_len) {
    PyObject *path = fs_str(rel, rel_len);
    if (!path) return -1;
    PyObject *r = PyObject_CallOneArg(t->plain, path);
    Py_DECREF(path);
    if (!r) return -1;
    int v = PyObject_IsTrue(r);
    Py_DECREF(r);
    return v;
}

/* One folder: its entries in readdir order; sub-folders are walked after it (an explicit stack). */
static int walk_tree(Walk *w, const char *root, size_t root_len, PyObject *skip) {
    typedef struct { char *rel; size_t len; int plain; } Todo;
    Tails tails;
    if (tails_get(&tails, skip) < 0) return -1;
    Todo *stack = malloc(sizeof(Todo) * 64);
    size_t top = 0, cap = 64;
    int rc = -1;
    if (!stack) { tails_free(&tails); PyErr_NoMemory(); return -1; }
    char *empty = strdup("");
    if (!empty) { free(stack); tails_free(&tails); PyErr_NoMemory(); return -1; }
    stack[top++] = (Todo){empty, 0, tails.held != NULL};  /* nothing matches the context itself */
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
            int verdict = kind != K_DIR && t.plain && !ends_with_a_tail(&tails, rel, rlen)
                ? 0 : ask(skip, rel, rlen, kind == K_DIR);
            if (verdict < 0) { closedir(d); free(rel); free(t.rel); goto out; }
            int plain = 0;
            if (kind == K_DIR && verdict == 0 && tails.held && (plain = ask_plain(&tails, rel, rlen)) < 0) {
                closedir(d); free(rel); free(t.rel); goto out;
            }
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
                stack[top++] = (Todo){copy, rlen, plain};
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
    tails_free(&tails);
    return rc;
}

static const char *KIND_NAMES[] = {"file", "dir", "symlink"};

/* walk(root, skip, entry_type) -> (entries, sorted): entries as entry_type(rel, abspath, kind, folder,
 * name), in byte order of rel; `sorted` is False when a name is not UTF-8 (then Python must sort). */
PyObject *py_walk(PyObject *self, PyObject *args) {
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
