/*
 * bench_etims.h — `duka-bench etims`: the eTIMS figures of issue 12 (bench/README.md):
 * invoices forwarded per second after an outage ends, and the added cost per sale of the
 * invoice a push now builds and enqueues.
 */
#ifndef DUKA_BENCH_ETIMS_H
#define DUKA_BENCH_ETIMS_H

/* Runs `duka-bench etims ARGS…` (argv[0] is "etims"); prints its table and appends it to
 * --results. Returns the exit status: 0, 1 when something was wrong (an error, an invoice
 * lost, duplicated or out of its no-gap series; never because it was slow), 2 on a usage
 * error. */
int etims_main(int argc, char **argv);

#endif
