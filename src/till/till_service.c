/* till_service.c — the service lock of a till database (see till_service.h). */
#include "till/till_service.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/limits.h"

static void lock_path(const char *db_path, char *out, size_t n)
{
    snprintf(out, n, "%s.service-lock", db_path);
}

static struct flock whole_file(short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET; /* l_start 0, l_len 0: the whole file */
    return fl;
}

duka_rc duka_till_service_lock(const char *db_path, int *fd_out, duka_err *err)
{
    char path[DUKA_PATH_MAX];
    lock_path(db_path, path, sizeof(path));
    *fd_out = -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return duka_err_set(err, DUKA_STORE, "cannot open the service lock %s: %s", path,
                            strerror(errno));
    struct flock fl = whole_file(F_WRLCK);
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno;
        pid_t holder = duka_till_service_pid(db_path);
        close(fd);
        if (e == EACCES || e == EAGAIN)
            return duka_err_set(err, DUKA_BUSY,
                                "another duka till (pid %ld) already serves '%s'; stop it first "
                                "(one service per till database)",
                                (long)holder, db_path);
        return duka_err_set(err, DUKA_STORE, "cannot lock %s: %s", path, strerror(e));
    }
    *fd_out = fd;
    return DUKA_OK;
}

void duka_till_service_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* closing drops the process's fcntl locks on the file */
}

pid_t duka_till_service_pid(const char *db_path)
{
    char path[DUKA_PATH_MAX];
    lock_path(db_path, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    /* F_GETLK asks about a lock we would take: the answer names the holder. Opened read-only,
     * a write lock cannot be asked for, so ask about a read lock, which a writer blocks. */
    struct flock fl = whole_file(F_RDLCK);
    pid_t pid = 0;
    if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
        pid = fl.l_pid;
    /* Closing a descriptor drops THIS process's locks on the file: never call this from the
     * process that holds the lock (duka till itself). */
    close(fd);
    return pid;
}

bool duka_till_service_wake(const char *db_path)
{
    pid_t pid = duka_till_service_pid(db_path);
    return pid > 0 && pid != getpid() && kill(pid, SIGUSR1) == 0;
}
