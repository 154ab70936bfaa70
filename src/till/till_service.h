/*
 * till_service.h — the one `duka till` process that serves a till database, as the other
 * commands see it.
 *
 * `duka till` holds a write lock (fcntl) on `<db>.service-lock` for its whole life. That gives:
 *   - one service per database: a second `duka till` on the same database is refused, naming
 *     the process that serves it (two would sync and probe twice, and answer for each other);
 *   - the truth for `duka status`: whether a service is running (the lock is held), so a
 *     connectivity recorded hours ago is shown as that, not as live;
 *   - a wake-up: a sale made by `duka sell` (or items put back by `duka queue retry`) signals
 *     the service (SIGUSR1 to the lock's holder, whose pid the kernel reports), which syncs
 *     at once as it does for a sale made through its own API — instead of waiting for the
 *     next timer. Best effort and after the commit: it never delays or fails the sale.
 * The kernel drops the lock when the process dies, however it dies (kill -9 included).
 */
#ifndef DUKA_TILL_SERVICE_H
#define DUKA_TILL_SERVICE_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

/* Takes the service lock of the database at db_path; *fd_out holds it until
 * duka_till_service_unlock. DUKA_BUSY naming the pid when another process holds it. */
duka_rc duka_till_service_lock(const char *db_path, int *fd_out, duka_err *err);

/* Releases the lock (fd < 0 is fine). */
void duka_till_service_unlock(int fd);

/* The pid of the `duka till` serving db_path, or 0 when none does. */
pid_t duka_till_service_pid(const char *db_path);

/* Asks the service of db_path, if one runs, to sync now. True when one was told. */
bool duka_till_service_wake(const char *db_path);

#endif
