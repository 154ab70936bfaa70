/*
 * crashvfs.h — a test SQLite VFS that simulates power loss and injects storage faults, in the
 * spirit of SQLite's own crash-test VFS (src/test6.c).
 *
 * It wraps the default ("unix") VFS and registers itself as the new default, so duka opens
 * its databases through it unchanged (duka_db_open passes no VFS name).
 *
 * Power loss. A kill -9 loses nothing the kernel already has; a power cut loses what the
 * disk had not made durable. For each database file, WAL and journal (by path, across every
 * handle: fsync is per file, not per handle) the VFS keeps an undo/redo record of every write
 * and truncate since that file's last successful xSync. A test arms a crash point with
 * crashvfs_crash_at(N): the Nth I/O operation (write, truncate or sync, counted over every
 * file from the arming) fails and the VFS is "powered off" — from then on every write,
 * truncate, sync, delete and open fails with an I/O error, so nothing more reaches the disk
 * (the process is dead, it just has not noticed). The test closes its connections (their
 * errors are meaningless) and calls crashvfs_power_cut(seed), which rewrites the real files as
 * a disk with a volatile write cache may have left them: every unsynced write is, by a seeded
 * choice, kept, dropped, or torn (only some of its 512-byte sectors kept), in any subset, and
 * every unsynced truncate kept or undone; the -shm file of each database is deleted (shared
 * memory does not survive). Power then comes back; the test reopens and checks.
 *
 * Faults. crashvfs_fault_set() fails the Nth operation of a kind (write, sync, read, truncate
 * or any of them) once (transient) or from the Nth on (persistent), with the error code of
 * that operation (SQLITE_IOERR_WRITE, _FSYNC, _READ, _TRUNCATE) or one given (SQLITE_FULL).
 * A failed write or truncate changes nothing; a failed sync makes nothing durable.
 *
 * Not modelled: directory entries (a created or deleted file is durable at once — no
 * directory fsync), a disk that lies about flushes, bit rot or misdirected writes, and the
 * kernel dropping dirty pages after a failed fsync ("fsyncgate"). See README.md.
 *
 * Threads: every entry point takes one global mutex; the tests are single-threaded anyway.
 * Memory: records are freed by crashvfs_power_cut, crashvfs_forget and crashvfs_uninstall.
 */
#ifndef DUKA_CRASHVFS_H
#define DUKA_CRASHVFS_H

#include <stdbool.h>
#include <stdint.h>

#define CRASHVFS_NAME "crashvfs"

/* Registers the VFS as the default (idempotent). Returns an SQLite result code. */
int crashvfs_install(void);

/* Unregisters it and frees every record. Every connection must be closed first. */
void crashvfs_uninstall(void);

/* ---- power loss ---- */

/* Arms a crash at the nth I/O operation from now (1 = the very next one); 0 disarms. Resets
 * the operation counter. Reads are not counted (failing a read is no power cut). */
void crashvfs_crash_at(int64_t n);

/* True once the armed crash point was reached (until crashvfs_power_cut). */
bool crashvfs_powered_off(void);

/* I/O operations (writes, truncates, syncs) since the last crashvfs_crash_at. */
int64_t crashvfs_ops(void);

typedef struct crashvfs_cut_stats {
    int64_t files;           /* files with unsynced changes */
    int64_t writes_kept;     /* unsynced writes that reached the disk whole */
    int64_t writes_dropped;  /* … that never reached it */
    int64_t writes_torn;     /* … of which only some sectors reached it */
    int64_t truncates_kept;
    int64_t truncates_dropped;
    int64_t shm_deleted;
} crashvfs_cut_stats;

/* Simulates the power loss on the real files (see above) with choices drawn from seed, then
 * powers the VFS back on, disarmed, with no records left. Connections should be closed first
 * (an open one would keep a stale view). stats may be NULL; when given, it is added to.
 * Returns 0, or -1 when a real file could not be rewritten (errno says why). */
int crashvfs_power_cut(uint64_t seed, crashvfs_cut_stats *stats);

/* A lying disk, for negative controls: while on, every sync reports success but makes nothing
 * durable (as if fsync were skipped), so a power cut may drop anything written. */
void crashvfs_set_lying_sync(bool on);

/* Declares everything written so far durable (drops the records): for a setup phase whose
 * files were made outside the VFS or are not under test. */
void crashvfs_forget(void);

/* ---- faults ---- */

typedef enum crashvfs_op {
    CRASHVFS_OP_ANY,      /* any of the four below */
    CRASHVFS_OP_WRITE,
    CRASHVFS_OP_SYNC,
    CRASHVFS_OP_READ,
    CRASHVFS_OP_TRUNCATE,
} crashvfs_op;

/* Fails the nth operation of kind op counted from now (n >= 1), once, or every one from the
 * nth on when persistent. code 0: the operation's own I/O error code; otherwise that code
 * (e.g. SQLITE_FULL) is returned instead. Replaces any earlier fault. */
void crashvfs_fault_set(crashvfs_op op, int64_t n, bool persistent, int code);

/* Removes the fault: the disk works again. */
void crashvfs_fault_clear(void);

/* Operations of the fault's kind seen since crashvfs_fault_set, and how many were failed. */
int64_t crashvfs_fault_seen(void);
int64_t crashvfs_fault_hits(void);

const char *crashvfs_op_name(crashvfs_op op);

#endif
