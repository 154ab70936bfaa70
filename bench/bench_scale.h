/*
 * bench_scale.h — `duka-bench scale`: the scale figures of issue 5 (bench/README.md), on a
 * SQLite hub and on a PostgreSQL hub, with PouchDB beside them.
 */
#ifndef DUKA_BENCH_SCALE_H
#define DUKA_BENCH_SCALE_H

/* Runs `duka-bench scale ARGS…` (argv[0] is "scale"); prints its table and appends it to
 * --results. Returns the exit status: 0, 1 when something was wrong (an error, a lost or
 * duplicated sale; never because it was slow), 2 on a usage error. */
int scale_main(int argc, char **argv);

#endif
