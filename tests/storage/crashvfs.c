/*
 * crashvfs.c — the power-loss and fault-injection VFS (see crashvfs.h).
 *
 * Each open file is a cv_file: our sqlite3_file followed by the real (unix) one. Files that
 * outlive a power cut — the main database, the WAL and a rollback journal — are "tracked":
 * one cv_tracked per path, shared by every handle on that path, holding the records of
 * writes and truncates not yet made durable by an xSync. A record keeps both the bytes that
 * were there before (to roll the file back to what the disk durably holds) and the bytes
 * written (to replay the chosen ones forward). So a power cut is:
 *   1. undo every record, newest first: the file is exactly its durable image;
 *   2. replay, oldest first, the records the seeded choice kept (a torn write: some of its
 *      sectors). Any subset, in order: every sector ends as its durable content or as one of
 *      the versions written to it, as with a volatile disk cache.
 * Temporary files (statement journals, temp tables) are not tracked: they do not survive a
 * power cut in any case.
 */
#include "crashvfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CV_SECTOR 512

typedef enum cv_rec_kind { CV_REC_WRITE, CV_REC_TRUNCATE } cv_rec_kind;

typedef struct cv_record {
    cv_rec_kind kind;
    sqlite3_int64 offset;   /* write: where; truncate: the new size */
    sqlite3_int64 len;      /* write: bytes written; truncate: 0 */
    sqlite3_int64 old_size; /* file size before the operation */
    unsigned char *old_data; /* write: [offset, offset+len) before (zeros past old_size);
                              * truncate: [new size, old_size) removed, when it shrank */
    unsigned char *new_data; /* write: the bytes written */
} cv_record;

typedef struct cv_tracked {
    char *path;
    bool is_main_db;
    cv_record *recs;
    int rec_count, rec_cap;
    struct cv_tracked *next;
} cv_tracked;

typedef struct cv_file {
    sqlite3_file base;
    sqlite3_file *real;
    cv_tracked *tracked; /* NULL: not tracked (temporary files) */
} cv_file;

static struct {
    pthread_mutex_t lock;
    bool installed;
    sqlite3_vfs *root; /* the unix VFS we wrap */
    sqlite3_vfs vfs;
    cv_tracked *files;
    /* power loss */
    int64_t crash_at, ops;
    bool off;
    bool lying_sync;
    /* faults */
    bool fault_on;
    crashvfs_op fault_op;
    int64_t fault_n, fault_seen, fault_hits;
    bool fault_persistent;
    int fault_code;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const sqlite3_io_methods cv_io_methods;

/* ---- records ---- */

static void record_free(cv_record *r)
{
    sqlite3_free(r->old_data);
    sqlite3_free(r->new_data);
    memset(r, 0, sizeof(*r));
}

static void tracked_clear(cv_tracked *t)
{
    for (int i = 0; i < t->rec_count; i++)
        record_free(&t->recs[i]);
    t->rec_count = 0;
}

static cv_tracked *tracked_find(const char *path, bool create, bool is_main_db)
{
    for (cv_tracked *t = g.files; t != NULL; t = t->next)
        if (strcmp(t->path, path) == 0) {
            t->is_main_db = t->is_main_db || is_main_db;
            return t;
        }
    if (!create)
        return NULL;
    cv_tracked *t = sqlite3_malloc(sizeof(*t));
    if (t == NULL)
        return NULL;
    memset(t, 0, sizeof(*t));
    t->path = sqlite3_mprintf("%s", path);
    if (t->path == NULL) {
        sqlite3_free(t);
        return NULL;
    }
    t->is_main_db = is_main_db;
    t->next = g.files;
    g.files = t;
    return t;
}

static cv_record *record_push(cv_tracked *t)
{
    if (t->rec_count == t->rec_cap) {
        int cap = t->rec_cap ? t->rec_cap * 2 : 16;
        cv_record *recs = sqlite3_realloc64(t->recs, (sqlite3_uint64)cap * sizeof(*recs));
        if (recs == NULL)
            return NULL;
        t->recs = recs;
        t->rec_cap = cap;
    }
    cv_record *r = &t->recs[t->rec_count++];
    memset(r, 0, sizeof(*r));
    return r;
}

/* ---- the operation counter and the fault ---- */

static bool fault_matches(crashvfs_op op)
{
    return g.fault_on && (g.fault_op == CRASHVFS_OP_ANY || g.fault_op == op);
}

/* Called (locked) before every I/O operation. Returns SQLITE_OK to let it run, or the error
 * code it must fail with. */
static int op_gate(crashvfs_op op, int natural_code)
{
    if (g.off)
        return op == CRASHVFS_OP_READ ? SQLITE_OK : natural_code;
    if (op != CRASHVFS_OP_READ && g.crash_at > 0) {
        g.ops++;
        if (g.ops >= g.crash_at) {
            g.off = true;
            return natural_code;
        }
    }
    if (fault_matches(op)) {
        g.fault_seen++;
        if (g.fault_seen == g.fault_n || (g.fault_persistent && g.fault_seen > g.fault_n)) {
            g.fault_hits++;
            return g.fault_code ? g.fault_code : natural_code;
        }
    }
    return SQLITE_OK;
}

/* ---- io methods ---- */

static int cv_close(sqlite3_file *f)
{
    cv_file *p = (cv_file *)f;
    int rc = p->real->pMethods ? p->real->pMethods->xClose(p->real) : SQLITE_OK;
    p->real->pMethods = NULL;
    return rc;
}

static int cv_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    cv_file *p = (cv_file *)f;
    pthread_mutex_lock(&g.lock);
    int rc = op_gate(CRASHVFS_OP_READ, SQLITE_IOERR_READ);
    pthread_mutex_unlock(&g.lock);
    if (rc != SQLITE_OK)
        return rc;
    return p->real->pMethods->xRead(p->real, buf, amt, off);
}

/* Records a write about to happen on a tracked file (locked). */
static int record_write(cv_file *p, const void *buf, int amt, sqlite3_int64 off)
{
    sqlite3_int64 size = 0;
    int rc = p->real->pMethods->xFileSize(p->real, &size);
    if (rc != SQLITE_OK)
        return rc;
    cv_record *r = record_push(p->tracked);
    if (r == NULL)
        return SQLITE_NOMEM;
    r->kind = CV_REC_WRITE;
    r->offset = off;
    r->len = amt;
    r->old_size = size;
    r->old_data = sqlite3_malloc(amt);
    r->new_data = sqlite3_malloc(amt);
    if (r->old_data == NULL || r->new_data == NULL) {
        record_free(r);
        p->tracked->rec_count--;
        return SQLITE_NOMEM;
    }
    memcpy(r->new_data, buf, (size_t)amt);
    memset(r->old_data, 0, (size_t)amt);
    if (off < size) {
        rc = p->real->pMethods->xRead(p->real, r->old_data, amt, off);
        if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
            record_free(r);
            p->tracked->rec_count--;
            return rc;
        }
    }
    return SQLITE_OK;
}

static int cv_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    cv_file *p = (cv_file *)f;
    pthread_mutex_lock(&g.lock);
    int rc = op_gate(CRASHVFS_OP_WRITE, SQLITE_IOERR_WRITE);
    if (rc == SQLITE_OK && p->tracked != NULL)
        rc = record_write(p, buf, amt, off);
    if (rc == SQLITE_OK) {
        rc = p->real->pMethods->xWrite(p->real, buf, amt, off);
        if (rc != SQLITE_OK && p->tracked != NULL) /* the write did not happen: forget it */
            record_free(&p->tracked->recs[--p->tracked->rec_count]);
    }
    pthread_mutex_unlock(&g.lock);
    return rc;
}

static int record_truncate(cv_file *p, sqlite3_int64 size)
{
    sqlite3_int64 old = 0;
    int rc = p->real->pMethods->xFileSize(p->real, &old);
    if (rc != SQLITE_OK)
        return rc;
    cv_record *r = record_push(p->tracked);
    if (r == NULL)
        return SQLITE_NOMEM;
    r->kind = CV_REC_TRUNCATE;
    r->offset = size;
    r->old_size = old;
    if (size < old) {
        r->old_data = sqlite3_malloc64((sqlite3_uint64)(old - size));
        if (r->old_data == NULL) {
            p->tracked->rec_count--;
            return SQLITE_NOMEM;
        }
        rc = p->real->pMethods->xRead(p->real, r->old_data, (int)(old - size), size);
        if (rc != SQLITE_OK) {
            record_free(r);
            p->tracked->rec_count--;
            return rc;
        }
    }
    return SQLITE_OK;
}

static int cv_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    cv_file *p = (cv_file *)f;
    pthread_mutex_lock(&g.lock);
    int rc = op_gate(CRASHVFS_OP_TRUNCATE, SQLITE_IOERR_TRUNCATE);
    if (rc == SQLITE_OK && p->tracked != NULL)
        rc = record_truncate(p, size);
    if (rc == SQLITE_OK) {
        rc = p->real->pMethods->xTruncate(p->real, size);
        if (rc != SQLITE_OK && p->tracked != NULL)
            record_free(&p->tracked->recs[--p->tracked->rec_count]);
    }
    pthread_mutex_unlock(&g.lock);
    return rc;
}

static int cv_sync(sqlite3_file *f, int flags)
{
    cv_file *p = (cv_file *)f;
    pthread_mutex_lock(&g.lock);
    int rc = op_gate(CRASHVFS_OP_SYNC, SQLITE_IOERR_FSYNC);
    /* Durability is what this VFS simulates, so the real fsync is skipped (it would only make
     * the loops slow). fsync is per file: every handle's writes to it are durable now. */
    (void)flags;
    if (rc == SQLITE_OK && p->tracked != NULL && !g.lying_sync)
        tracked_clear(p->tracked);
    pthread_mutex_unlock(&g.lock);
    return rc;
}

static int cv_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    cv_file *p = (cv_file *)f;
    return p->real->pMethods->xFileSize(p->real, size);
}

static int cv_lock(sqlite3_file *f, int level)
{
    cv_file *p = (cv_file *)f;
    return p->real->pMethods->xLock(p->real, level);
}

static int cv_unlock(sqlite3_file *f, int level)
{
    cv_file *p = (cv_file *)f;
    return p->real->pMethods->xUnlock(p->real, level);
}

static int cv_check_reserved_lock(sqlite3_file *f, int *out)
{
    cv_file *p = (cv_file *)f;
    return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int cv_file_control(sqlite3_file *f, int op, void *arg)
{
    cv_file *p = (cv_file *)f;
    /* A size hint may make the unix VFS extend the file behind xWrite's back (when a chunk
     * size is set); it is only a hint, so it is not passed on. */
    if (op == SQLITE_FCNTL_SIZE_HINT)
        return SQLITE_OK;
    return p->real->pMethods->xFileControl(p->real, op, arg);
}

static int cv_sector_size(sqlite3_file *f)
{
    cv_file *p = (cv_file *)f;
    return p->real->pMethods->xSectorSize(p->real);
}

static int cv_device_characteristics(sqlite3_file *f)
{
    cv_file *p = (cv_file *)f;
    return p->real->pMethods->xDeviceCharacteristics(p->real);
}

static int cv_shm_map(sqlite3_file *f, int page, int page_size, int extend, void volatile **pp)
{
    cv_file *p = (cv_file *)f;
    return p->real->pMethods->xShmMap(p->real, page, page_size, extend, pp);
}

static int cv_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    cv_file *p = (cv_file *)f;
    return p->real->pMethods->xShmLock(p->real, offset, n, flags);
}

static void cv_shm_barrier(sqlite3_file *f)
{
    cv_file *p = (cv_file *)f;
    p->real->pMethods->xShmBarrier(p->real);
}

static int cv_shm_unmap(sqlite3_file *f, int delete_flag)
{
    cv_file *p = (cv_file *)f;
    return p->real->pMethods->xShmUnmap(p->real, delete_flag);
}

/* No memory-mapped I/O: every read goes through xRead (a NULL page tells SQLite so). */
static int cv_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    (void)f;
    (void)off;
    (void)amt;
    *pp = NULL;
    return SQLITE_OK;
}

static int cv_unfetch(sqlite3_file *f, sqlite3_int64 off, void *page)
{
    (void)f;
    (void)off;
    (void)page;
    return SQLITE_OK;
}

static const sqlite3_io_methods cv_io_methods = {
    .iVersion = 3,
    .xClose = cv_close,
    .xRead = cv_read,
    .xWrite = cv_write,
    .xTruncate = cv_truncate,
    .xSync = cv_sync,
    .xFileSize = cv_file_size,
    .xLock = cv_lock,
    .xUnlock = cv_unlock,
    .xCheckReservedLock = cv_check_reserved_lock,
    .xFileControl = cv_file_control,
    .xSectorSize = cv_sector_size,
    .xDeviceCharacteristics = cv_device_characteristics,
    .xShmMap = cv_shm_map,
    .xShmLock = cv_shm_lock,
    .xShmBarrier = cv_shm_barrier,
    .xShmUnmap = cv_shm_unmap,
    .xFetch = cv_fetch,
    .xUnfetch = cv_unfetch,
};

/* ---- vfs methods ---- */

static int cv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    cv_file *p = (cv_file *)f;
    memset(p, 0, sizeof(*p));
    p->real = (sqlite3_file *)(p + 1);
    pthread_mutex_lock(&g.lock);
    bool off = g.off;
    pthread_mutex_unlock(&g.lock);
    if (off)
        return SQLITE_CANTOPEN; /* the machine is off */
    int rc = g.root->xOpen(g.root, name, p->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (p->real->pMethods)
            p->real->pMethods->xClose(p->real);
        p->real->pMethods = NULL;
        return rc;
    }
    bool durable = (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL |
                             SQLITE_OPEN_SUPER_JOURNAL)) != 0;
    if (name != NULL && durable) {
        pthread_mutex_lock(&g.lock);
        p->tracked = tracked_find(name, true, (flags & SQLITE_OPEN_MAIN_DB) != 0);
        pthread_mutex_unlock(&g.lock);
        if (p->tracked == NULL) {
            p->real->pMethods->xClose(p->real);
            p->real->pMethods = NULL;
            return SQLITE_NOMEM;
        }
    }
    p->base.pMethods = &cv_io_methods;
    return SQLITE_OK;
}

static int cv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    pthread_mutex_lock(&g.lock);
    if (g.off) {
        pthread_mutex_unlock(&g.lock);
        return SQLITE_IOERR_DELETE;
    }
    /* The file is gone (directory changes are durable at once in this model). */
    cv_tracked *t = tracked_find(name, false, false);
    if (t != NULL)
        tracked_clear(t);
    pthread_mutex_unlock(&g.lock);
    return g.root->xDelete(g.root, name, sync_dir);
}

static int cv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return g.root->xAccess(g.root, name, flags, out);
}

static int cv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return g.root->xFullPathname(g.root, name, n, out);
}

static void *cv_dl_open(sqlite3_vfs *vfs, const char *path)
{
    (void)vfs;
    return g.root->xDlOpen(g.root, path);
}

static void cv_dl_error(sqlite3_vfs *vfs, int n, char *msg)
{
    (void)vfs;
    g.root->xDlError(g.root, n, msg);
}

static void (*cv_dl_sym(sqlite3_vfs *vfs, void *handle, const char *sym))(void)
{
    (void)vfs;
    return g.root->xDlSym(g.root, handle, sym);
}

static void cv_dl_close(sqlite3_vfs *vfs, void *handle)
{
    (void)vfs;
    g.root->xDlClose(g.root, handle);
}

static int cv_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return g.root->xRandomness(g.root, n, out);
}

static int cv_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return g.root->xSleep(g.root, us);
}

static int cv_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return g.root->xCurrentTime(g.root, out);
}

static int cv_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return g.root->xGetLastError ? g.root->xGetLastError(g.root, n, out) : 0;
}

static int cv_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return g.root->xCurrentTimeInt64(g.root, out);
}

int crashvfs_install(void)
{
    int rc = sqlite3_initialize();
    if (rc != SQLITE_OK)
        return rc;
    pthread_mutex_lock(&g.lock);
    if (g.installed) {
        pthread_mutex_unlock(&g.lock);
        return SQLITE_OK;
    }
    g.root = sqlite3_vfs_find(NULL);
    if (g.root == NULL || g.root->iVersion < 2) {
        pthread_mutex_unlock(&g.lock);
        return SQLITE_ERROR;
    }
    memset(&g.vfs, 0, sizeof(g.vfs));
    g.vfs.iVersion = 2;
    g.vfs.szOsFile = (int)(sizeof(cv_file) + (size_t)g.root->szOsFile);
    g.vfs.mxPathname = g.root->mxPathname;
    g.vfs.zName = CRASHVFS_NAME;
    g.vfs.xOpen = cv_open;
    g.vfs.xDelete = cv_delete;
    g.vfs.xAccess = cv_access;
    g.vfs.xFullPathname = cv_full_pathname;
    g.vfs.xDlOpen = cv_dl_open;
    g.vfs.xDlError = cv_dl_error;
    g.vfs.xDlSym = cv_dl_sym;
    g.vfs.xDlClose = cv_dl_close;
    g.vfs.xRandomness = cv_randomness;
    g.vfs.xSleep = cv_sleep;
    g.vfs.xCurrentTime = cv_current_time;
    g.vfs.xGetLastError = cv_get_last_error;
    g.vfs.xCurrentTimeInt64 = cv_current_time_int64;
    rc = sqlite3_vfs_register(&g.vfs, 1);
    g.installed = rc == SQLITE_OK;
    pthread_mutex_unlock(&g.lock);
    return rc;
}

static void free_all_locked(void)
{
    while (g.files != NULL) {
        cv_tracked *t = g.files;
        g.files = t->next;
        tracked_clear(t);
        sqlite3_free(t->recs);
        sqlite3_free(t->path);
        sqlite3_free(t);
    }
}

void crashvfs_uninstall(void)
{
    pthread_mutex_lock(&g.lock);
    if (g.installed) {
        sqlite3_vfs_unregister(&g.vfs);
        if (g.root != NULL)
            sqlite3_vfs_register(g.root, 1);
        g.installed = false;
    }
    free_all_locked();
    g.crash_at = g.ops = 0;
    g.off = false;
    g.lying_sync = false;
    g.fault_on = false;
    pthread_mutex_unlock(&g.lock);
}

/* ---- power loss ---- */

void crashvfs_crash_at(int64_t n)
{
    pthread_mutex_lock(&g.lock);
    g.crash_at = n > 0 ? n : 0;
    g.ops = 0;
    g.off = false;
    pthread_mutex_unlock(&g.lock);
}

bool crashvfs_powered_off(void)
{
    pthread_mutex_lock(&g.lock);
    bool off = g.off;
    pthread_mutex_unlock(&g.lock);
    return off;
}

int64_t crashvfs_ops(void)
{
    pthread_mutex_lock(&g.lock);
    int64_t n = g.ops;
    pthread_mutex_unlock(&g.lock);
    return n;
}

void crashvfs_set_lying_sync(bool on)
{
    pthread_mutex_lock(&g.lock);
    g.lying_sync = on;
    pthread_mutex_unlock(&g.lock);
}

void crashvfs_forget(void)
{
    pthread_mutex_lock(&g.lock);
    for (cv_tracked *t = g.files; t != NULL; t = t->next)
        tracked_clear(t);
    pthread_mutex_unlock(&g.lock);
}

/* splitmix64: small, seedable, good enough to pick outcomes. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int pwrite_all(int fd, const unsigned char *buf, sqlite3_int64 len, sqlite3_int64 off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, (size_t)len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= n;
        off += n;
    }
    return 0;
}

/* Rolls the file back to its durable image: every record undone, newest first. */
static int undo_all(int fd, const cv_tracked *t)
{
    for (int i = t->rec_count - 1; i >= 0; i--) {
        const cv_record *r = &t->recs[i];
        if (r->kind == CV_REC_WRITE) {
            if (r->offset < r->old_size) {
                sqlite3_int64 n = r->old_size - r->offset;
                if (n > r->len)
                    n = r->len;
                if (pwrite_all(fd, r->old_data, n, r->offset) != 0)
                    return -1;
            }
            if (r->offset + r->len > r->old_size && ftruncate(fd, (off_t)r->old_size) != 0)
                return -1;
        } else if (r->offset < r->old_size) {
            if (pwrite_all(fd, r->old_data, r->old_size - r->offset, r->offset) != 0)
                return -1;
        } else if (r->offset > r->old_size && ftruncate(fd, (off_t)r->old_size) != 0) {
            return -1;
        }
    }
    return 0;
}

typedef enum cv_fate { CV_KEEP, CV_DROP, CV_TEAR } cv_fate;

/* Writes the sectors of r that the tear keeps: each 512-byte-aligned piece with even odds.
 * *fate_out says what it came to (a write of one piece is kept or dropped, not torn). */
static int replay_torn(int fd, const cv_record *r, uint64_t *rnd, cv_fate *fate_out)
{
    sqlite3_int64 start = r->offset, end = r->offset + r->len;
    int kept = 0, pieces = 0;
    while (start < end) {
        sqlite3_int64 stop = (start / CV_SECTOR + 1) * CV_SECTOR;
        if (stop > end)
            stop = end;
        pieces++;
        if (next_random(rnd) & 1) {
            kept++;
            if (pwrite_all(fd, r->new_data + (start - r->offset), stop - start, start) != 0)
                return -1;
        }
        start = stop;
    }
    *fate_out = kept == 0 ? CV_DROP : kept == pieces ? CV_KEEP : CV_TEAR;
    return 0;
}

static int cut_file(cv_tracked *t, uint64_t *rnd, crashvfs_cut_stats *st)
{
    if (t->rec_count == 0)
        return 0;
    int fd = open(t->path, O_RDWR);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    st->files++;
    int rc = undo_all(fd, t);
    /* A file-wide mood first — everything lost, everything kept, or a mix — so both extremes
     * come up often, not only as the product of many coin tosses. */
    uint64_t mood = next_random(rnd) % 5;
    for (int i = 0; rc == 0 && i < t->rec_count; i++) {
        const cv_record *r = &t->recs[i];
        uint64_t x = next_random(rnd) % 100;
        cv_fate fate = mood == 0 ? CV_DROP : mood == 1 ? CV_KEEP
                     : x < 35    ? CV_DROP
                     : x < 75    ? CV_KEEP
                                 : CV_TEAR;
        if (r->kind == CV_REC_TRUNCATE) {
            if (fate == CV_DROP) {
                st->truncates_dropped++;
            } else {
                st->truncates_kept++;
                rc = ftruncate(fd, (off_t)r->offset);
            }
        } else if (fate == CV_KEEP) {
            st->writes_kept++;
            rc = pwrite_all(fd, r->new_data, r->len, r->offset);
        } else if (fate == CV_DROP) {
            st->writes_dropped++;
        } else {
            cv_fate came = CV_TEAR;
            rc = replay_torn(fd, r, rnd, &came);
            if (came == CV_KEEP)
                st->writes_kept++;
            else if (came == CV_DROP)
                st->writes_dropped++;
            else
                st->writes_torn++;
        }
    }
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

int crashvfs_power_cut(uint64_t seed, crashvfs_cut_stats *stats)
{
    crashvfs_cut_stats local;
    crashvfs_cut_stats *st = stats ? stats : &local;
    memset(&local, 0, sizeof(local));
    uint64_t rnd = seed ^ 0x6475b1a5c0ffee00ULL;
    int rc = 0;
    pthread_mutex_lock(&g.lock);
    for (cv_tracked *t = g.files; t != NULL; t = t->next) {
        if (rc == 0 && cut_file(t, &rnd, st) != 0)
            rc = -1;
        tracked_clear(t);
        if (t->is_main_db) {
            char shm[4096];
            snprintf(shm, sizeof(shm), "%s-shm", t->path);
            if (unlink(shm) == 0)
                st->shm_deleted++;
        }
    }
    g.off = false;
    g.crash_at = g.ops = 0;
    pthread_mutex_unlock(&g.lock);
    return rc;
}

/* ---- faults ---- */

void crashvfs_fault_set(crashvfs_op op, int64_t n, bool persistent, int code)
{
    pthread_mutex_lock(&g.lock);
    g.fault_on = n > 0;
    g.fault_op = op;
    g.fault_n = n;
    g.fault_persistent = persistent;
    g.fault_code = code;
    g.fault_seen = g.fault_hits = 0;
    pthread_mutex_unlock(&g.lock);
}

void crashvfs_fault_clear(void)
{
    pthread_mutex_lock(&g.lock);
    g.fault_on = false;
    pthread_mutex_unlock(&g.lock);
}

int64_t crashvfs_fault_seen(void)
{
    pthread_mutex_lock(&g.lock);
    int64_t n = g.fault_seen;
    pthread_mutex_unlock(&g.lock);
    return n;
}

int64_t crashvfs_fault_hits(void)
{
    pthread_mutex_lock(&g.lock);
    int64_t n = g.fault_hits;
    pthread_mutex_unlock(&g.lock);
    return n;
}

const char *crashvfs_op_name(crashvfs_op op)
{
    switch (op) {
    case CRASHVFS_OP_ANY:
        return "any";
    case CRASHVFS_OP_WRITE:
        return "write";
    case CRASHVFS_OP_SYNC:
        return "sync";
    case CRASHVFS_OP_READ:
        return "read";
    case CRASHVFS_OP_TRUNCATE:
        return "truncate";
    }
    return "?";
}
