/*
 * test_connectivity.c — the connectivity monitor (sync/connectivity.h) as a state machine,
 * driven by hand-made outcomes and a fake clock: every transition between unknown, online,
 * degraded and offline; when the next probe is due (the interval while the hub answers, 1 s,
 * 2 s, 4 s … capped while it does not); the events the subscribers get; the offline switch;
 * and what the snapshot keeps. No test sleeps: the clock is moved by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sync/connectivity.h"
#include "test_util.h"

#define T0 T_2026_11_21_NOON_MS

/* The documented defaults: probe every 30 s, re-probe while offline up to 4 s, slow above
 * 2 s, degraded after 3 consecutive 5xx. */
static const duka_monitor_settings default_settings = {
    .probe_interval_ms = 30000,
    .offline_recheck_max_ms = 4000,
    .degraded_latency_ms = 2000,
    .degraded_failures = 3,
};

/* ---- listener that records every event ---- */

#define EVENTS_MAX 64

typedef struct event {
    duka_conn_state from, to;
    int64_t at_ms;
} event;

typedef struct recorder {
    event events[EVENTS_MAX];
    int count;
    /* Set when a listener reads the monitor from inside the callback. */
    duka_monitor *monitor;
    duka_conn_state seen_state[EVENTS_MAX];
} recorder;

static void record(void *ctx, duka_conn_state from, duka_conn_state to, int64_t at_ms)
{
    recorder *r = ctx;
    if (r->count >= EVENTS_MAX)
        fail_msg("more than %d events", EVENTS_MAX);
    if (r->monitor != NULL) {
        duka_monitor_snapshot snap;
        duka_monitor_get(r->monitor, &snap); /* must not deadlock */
        r->seen_state[r->count] = snap.state;
    }
    r->events[r->count++] = (event){from, to, at_ms};
}

/* ---- fixture: a monitor on a fake clock at T0 with one recorder subscribed ---- */

typedef struct fixture {
    fake_clock clock;
    duka_monitor *m;
    recorder rec;
} fixture;

static fixture *fixture_new(const duka_monitor_settings *s)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    fake_clock_init(&f->clock, T0);
    f->m = duka_monitor_create(s, &f->clock.clock);
    assert_non_null(f->m);
    assert_true(duka_monitor_subscribe(f->m, record, &f->rec));
    return f;
}

static void fixture_free(fixture *f)
{
    if (f == NULL)
        return;
    duka_monitor_destroy(f->m);
    free(f);
}

static int setup(void **state)
{
    *state = fixture_new(&default_settings);
    return 0;
}

static int teardown(void **state)
{
    fixture_free(*state);
    return 0;
}

/* ---- outcomes ---- */

static duka_hub_outcome answered(long http_status, int64_t latency_ms)
{
    duka_hub_outcome o = {true, http_status, latency_ms, false, NULL};
    if (http_status >= 400)
        o.error = "the hub answered with an error";
    return o;
}

static duka_hub_outcome fast_ok(void)
{
    return answered(200, 40);
}

static duka_hub_outcome slow_ok(void)
{
    return answered(200, default_settings.degraded_latency_ms + 1);
}

static duka_hub_outcome services_down(void)
{
    duka_hub_outcome o = answered(200, 40);
    o.services_down = true;
    return o;
}

static duka_hub_outcome server_error(void)
{
    return answered(503, 40);
}

static duka_hub_outcome not_reached(void)
{
    duka_hub_outcome o = {false, 0, 0, false, "connection refused"};
    return o;
}

/* Advances the fake clock by dt_ms, then reports o. */
static void report_at(fixture *f, int64_t dt_ms, duka_hub_outcome o)
{
    f->clock.now_ms += dt_ms;
    duka_monitor_report(f->m, &o);
}

static duka_monitor_snapshot snapshot(const fixture *f)
{
    duka_monitor_snapshot s;
    duka_monitor_get(f->m, &s);
    return s;
}

static void assert_state(const fixture *f, duka_conn_state expected)
{
    duka_monitor_snapshot s = snapshot(f);
    if (s.state != expected)
        fail_msg("state %s, expected %s", duka_conn_state_name(s.state),
                 duka_conn_state_name(expected));
}

/* Asserts the recorder's event i. */
static void assert_event(const recorder *r, int i, duka_conn_state from, duka_conn_state to,
                         int64_t at_ms)
{
    if (i >= r->count)
        fail_msg("event %d missing (%d recorded)", i, r->count);
    const event *e = &r->events[i];
    if (e->from != from || e->to != to || e->at_ms != at_ms)
        fail_msg("event %d is %s -> %s at %lld, expected %s -> %s at %lld", i,
                 duka_conn_state_name(e->from), duka_conn_state_name(e->to),
                 (long long)e->at_ms, duka_conn_state_name(from), duka_conn_state_name(to),
                 (long long)at_ms);
}

/* Asserts the next probe is due exactly delay_ms after the clock's now. */
static void assert_next_probe_in(const fixture *f, int64_t delay_ms)
{
    duka_monitor_snapshot s = snapshot(f);
    if (s.next_probe_ms != f->clock.now_ms + delay_ms)
        fail_msg("next probe %lld ms from now, expected %lld",
                 (long long)(s.next_probe_ms - f->clock.now_ms), (long long)delay_ms);
}

/* Brings a fresh monitor to `online` (one event, at T0 + 1 s). */
static void go_online(fixture *f)
{
    report_at(f, 1000, fast_ok());
    assert_state(f, DUKA_CONN_ONLINE);
}

/* ---- names and the start ---- */

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(duka_conn_state_name(DUKA_CONN_UNKNOWN), "unknown");
    assert_string_equal(duka_conn_state_name(DUKA_CONN_ONLINE), "online");
    assert_string_equal(duka_conn_state_name(DUKA_CONN_DEGRADED), "degraded");
    assert_string_equal(duka_conn_state_name(DUKA_CONN_OFFLINE), "offline");
    assert_string_equal(duka_conn_state_name((duka_conn_state)42), "unknown");
}

static void test_starts_unknown_with_probe_due_now(void **state)
{
    fixture *f = *state;
    duka_monitor_snapshot s = snapshot(f);
    assert_int_equal(s.state, DUKA_CONN_UNKNOWN);
    assert_int_equal(s.since_ms, T0);
    assert_int_equal(s.next_probe_ms, T0);
    assert_int_equal(s.last_ok_ms, 0);
    assert_int_equal(s.last_sync_ms, 0);
    assert_int_equal(s.consecutive_failures, 0);
    assert_false(s.forced_offline);
    assert_string_equal(s.last_error, "");
    assert_int_equal(f->rec.count, 0);
}

static void test_system_clock_and_null_destroy(void **state)
{
    (void)state;
    duka_monitor *m = duka_monitor_create(&default_settings, NULL);
    assert_non_null(m);
    duka_monitor_snapshot s;
    duka_monitor_get(m, &s);
    assert_int_equal(s.state, DUKA_CONN_UNKNOWN);
    assert_true(s.since_ms > T_2026_11_20_NOON_MS - 10LL * 365 * 86400000); /* a real time */
    duka_monitor_destroy(m);
    duka_monitor_destroy(NULL);
}

/* ---- from unknown ---- */

static void test_unknown_to_online(void **state)
{
    fixture *f = *state;
    /* Exactly at the latency threshold is still fast. */
    report_at(f, 250, answered(200, default_settings.degraded_latency_ms));
    duka_monitor_snapshot s = snapshot(f);
    assert_int_equal(s.state, DUKA_CONN_ONLINE);
    assert_int_equal(s.since_ms, T0 + 250);
    assert_int_equal(s.last_ok_ms, T0 + 250);
    assert_int_equal(s.consecutive_failures, 0);
    assert_next_probe_in(f, default_settings.probe_interval_ms);
    assert_int_equal(f->rec.count, 1);
    assert_event(&f->rec, 0, DUKA_CONN_UNKNOWN, DUKA_CONN_ONLINE, T0 + 250);
}

static void test_unknown_to_offline(void **state)
{
    fixture *f = *state;
    report_at(f, 5000, not_reached());
    duka_monitor_snapshot s = snapshot(f);
    assert_int_equal(s.state, DUKA_CONN_OFFLINE);
    assert_int_equal(s.since_ms, T0 + 5000);
    assert_int_equal(s.last_ok_ms, 0);
    assert_int_equal(s.consecutive_failures, 1);
    assert_string_equal(s.last_error, "connection refused");
    assert_next_probe_in(f, 1000);
    assert_int_equal(f->rec.count, 1);
    assert_event(&f->rec, 0, DUKA_CONN_UNKNOWN, DUKA_CONN_OFFLINE, T0 + 5000);
}

/* Each way the hub can answer but not well, on a fresh monitor. */
typedef struct degrading_case {
    const char *what;
    duka_hub_outcome outcome;
} degrading_case;

static void degrading_cases(degrading_case out[6])
{
    out[0] = (degrading_case){"500", answered(500, 40)};
    out[1] = (degrading_case){"503", server_error()};
    out[2] = (degrading_case){"slow 200", slow_ok()};
    out[3] = (degrading_case){"services down", services_down()};
    out[4] = (degrading_case){"401", answered(401, 40)};
    out[5] = (degrading_case){"403", answered(403, 40)};
}

static void test_unknown_to_degraded(void **state)
{
    (void)state;
    degrading_case cases[6];
    degrading_cases(cases);
    for (int i = 0; i < 6; i++) {
        fixture *f = fixture_new(&default_settings);
        report_at(f, 100, cases[i].outcome);
        duka_monitor_snapshot s = snapshot(f);
        if (s.state != DUKA_CONN_DEGRADED)
            fail_msg("%s from unknown: %s, expected degraded", cases[i].what,
                     duka_conn_state_name(s.state));
        assert_int_equal(s.since_ms, T0 + 100);
        assert_int_equal(s.last_ok_ms, 0); /* answered, but not well */
        assert_next_probe_in(f, default_settings.probe_interval_ms);
        assert_int_equal(f->rec.count, 1);
        assert_event(&f->rec, 0, DUKA_CONN_UNKNOWN, DUKA_CONN_DEGRADED, T0 + 100);
        fixture_free(f);
    }
}

/* ---- from online ---- */

static void test_online_to_degraded_after_n_5xx_not_before(void **state)
{
    fixture *f = *state;
    go_online(f);
    const int n = default_settings.degraded_failures;
    for (int i = 1; i < n; i++) {
        report_at(f, 1000, server_error());
        assert_state(f, DUKA_CONN_ONLINE);
        assert_int_equal(snapshot(f).consecutive_failures, i);
        assert_next_probe_in(f, default_settings.probe_interval_ms);
    }
    assert_int_equal(f->rec.count, 1); /* only unknown -> online so far */
    report_at(f, 1000, server_error());
    assert_state(f, DUKA_CONN_DEGRADED);
    assert_int_equal(snapshot(f).consecutive_failures, n);
    assert_int_equal(f->rec.count, 2);
    assert_event(&f->rec, 1, DUKA_CONN_ONLINE, DUKA_CONN_DEGRADED, f->clock.now_ms);
    /* More 5xx keep it degraded without new events. */
    report_at(f, 1000, server_error());
    assert_state(f, DUKA_CONN_DEGRADED);
    assert_int_equal(f->rec.count, 2);
}

static void test_success_between_5xx_resets_the_count(void **state)
{
    fixture *f = *state;
    go_online(f);
    const int n = default_settings.degraded_failures;
    for (int round = 0; round < 3; round++) {
        for (int i = 1; i < n; i++) {
            report_at(f, 1000, server_error());
            assert_state(f, DUKA_CONN_ONLINE);
        }
        report_at(f, 1000, fast_ok());
        assert_state(f, DUKA_CONN_ONLINE);
        assert_int_equal(snapshot(f).consecutive_failures, 0);
    }
    /* A 4xx that is not about the token (the hub refused one item) also counts as answered
     * well: the hub works. */
    for (int i = 1; i < n; i++)
        report_at(f, 1000, server_error());
    report_at(f, 1000, answered(422, 40));
    assert_state(f, DUKA_CONN_ONLINE);
    for (int i = 1; i < n; i++)
        report_at(f, 1000, server_error());
    assert_state(f, DUKA_CONN_ONLINE);
    assert_int_equal(f->rec.count, 1);
    report_at(f, 1000, server_error());
    assert_state(f, DUKA_CONN_DEGRADED);
    assert_int_equal(f->rec.count, 2);
}

static void test_degraded_failures_setting_is_used(void **state)
{
    (void)state;
    const int thresholds[] = {1, 2, 5};
    for (int t = 0; t < 3; t++) {
        duka_monitor_settings s = default_settings;
        s.degraded_failures = thresholds[t];
        fixture *f = fixture_new(&s);
        go_online(f);
        for (int i = 1; i < thresholds[t]; i++) {
            report_at(f, 1000, server_error());
            assert_state(f, DUKA_CONN_ONLINE);
        }
        report_at(f, 1000, server_error());
        assert_state(f, DUKA_CONN_DEGRADED);
        fixture_free(f);
    }
}

static void test_online_to_degraded_at_once_when_slow_or_services_down(void **state)
{
    (void)state;
    degrading_case cases[6];
    degrading_cases(cases);
    for (int i = 2; i < 6; i++) { /* the non-5xx ones: no count to reach */
        fixture *f = fixture_new(&default_settings);
        go_online(f);
        report_at(f, 1000, cases[i].outcome);
        duka_monitor_snapshot s = snapshot(f);
        if (s.state != DUKA_CONN_DEGRADED)
            fail_msg("%s from online: %s, expected degraded", cases[i].what,
                     duka_conn_state_name(s.state));
        assert_int_equal(s.last_ok_ms, T0 + 1000); /* the last good answer, not this one */
        assert_int_equal(f->rec.count, 2);
        assert_event(&f->rec, 1, DUKA_CONN_ONLINE, DUKA_CONN_DEGRADED, T0 + 2000);
        fixture_free(f);
    }
}

static void test_online_to_offline(void **state)
{
    fixture *f = *state;
    go_online(f);
    report_at(f, 30000, not_reached());
    duka_monitor_snapshot s = snapshot(f);
    assert_int_equal(s.state, DUKA_CONN_OFFLINE);
    assert_int_equal(s.since_ms, T0 + 31000);
    assert_int_equal(s.last_ok_ms, T0 + 1000);
    assert_int_equal(s.consecutive_failures, 1);
    assert_next_probe_in(f, 1000);
    assert_int_equal(f->rec.count, 2);
    assert_event(&f->rec, 1, DUKA_CONN_ONLINE, DUKA_CONN_OFFLINE, T0 + 31000);
}

/* ---- from degraded ---- */

static void test_degraded_to_online(void **state)
{
    fixture *f = *state;
    go_online(f);
    report_at(f, 1000, slow_ok());
    assert_state(f, DUKA_CONN_DEGRADED);
    report_at(f, 1000, fast_ok());
    duka_monitor_snapshot s = snapshot(f);
    assert_int_equal(s.state, DUKA_CONN_ONLINE);
    assert_int_equal(s.since_ms, T0 + 3000);
    assert_int_equal(s.last_ok_ms, T0 + 3000);
    assert_next_probe_in(f, default_settings.probe_interval_ms);
    assert_int_equal(f->rec.count, 3);
    assert_event(&f->rec, 2, DUKA_CONN_DEGRADED, DUKA_CONN_ONLINE, T0 + 3000);

    /* Degraded by 5xx, then one good answer: online, and the 5xx count starts over. */
    for (int i = 0; i < default_settings.degraded_failures; i++)
        report_at(f, 1000, server_error());
    assert_state(f, DUKA_CONN_DEGRADED);
    report_at(f, 1000, fast_ok());
    assert_state(f, DUKA_CONN_ONLINE);
    assert_int_equal(snapshot(f).consecutive_failures, 0);
    report_at(f, 1000, server_error());
    assert_state(f, DUKA_CONN_ONLINE);
}

static void test_degraded_stays_degraded(void **state)
{
    fixture *f = *state;
    report_at(f, 1000, services_down());
    assert_state(f, DUKA_CONN_DEGRADED);
    /* Slow, services down, a token refused, one 5xx: still degraded, no event. */
    report_at(f, 1000, slow_ok());
    report_at(f, 1000, services_down());
    report_at(f, 1000, answered(401, 40));
    report_at(f, 1000, server_error());
    assert_state(f, DUKA_CONN_DEGRADED);
    assert_int_equal(snapshot(f).since_ms, T0 + 1000);
    assert_int_equal(f->rec.count, 1);
}

static void test_degraded_to_offline(void **state)
{
    fixture *f = *state;
    report_at(f, 1000, slow_ok());
    assert_state(f, DUKA_CONN_DEGRADED);
    report_at(f, 30000, not_reached());
    duka_monitor_snapshot s = snapshot(f);
    assert_int_equal(s.state, DUKA_CONN_OFFLINE);
    assert_int_equal(s.since_ms, T0 + 31000);
    assert_string_equal(s.last_error, "connection refused");
    assert_int_equal(f->rec.count, 2);
    assert_event(&f->rec, 1, DUKA_CONN_DEGRADED, DUKA_CONN_OFFLINE, T0 + 31000);
}

/* ---- from offline ---- */

static void test_offline_to_online(void **state)
{
    fixture *f = *state;
    report_at(f, 1000, not_reached());
    report_at(f, 1000, not_reached());
    report_at(f, 2000, not_reached());
    assert_state(f, DUKA_CONN_OFFLINE);
    assert_int_equal(snapshot(f).consecutive_failures, 3);
    report_at(f, 4000, fast_ok());
    duka_monitor_snapshot s = snapshot(f);
    assert_int_equal(s.state, DUKA_CONN_ONLINE);
    assert_int_equal(s.since_ms, T0 + 8000);
    assert_int_equal(s.last_ok_ms, T0 + 8000);
    assert_int_equal(s.consecutive_failures, 0);
    assert_next_probe_in(f, default_settings.probe_interval_ms);
    assert_int_equal(f->rec.count, 2);
    assert_event(&f->rec, 0, DUKA_CONN_UNKNOWN, DUKA_CONN_OFFLINE, T0 + 1000);
    assert_event(&f->rec, 1, DUKA_CONN_OFFLINE, DUKA_CONN_ONLINE, T0 + 8000);
}

static void test_offline_to_degraded(void **state)
{
    (void)state;
    degrading_case cases[6];
    degrading_cases(cases);
    for (int i = 0; i < 6; i++) {
        fixture *f = fixture_new(&default_settings);
        report_at(f, 1000, not_reached());
        assert_state(f, DUKA_CONN_OFFLINE);
        /* One answer is enough (even one 5xx): the hub is reachable again. */
        report_at(f, 1000, cases[i].outcome);
        duka_monitor_snapshot s = snapshot(f);
        if (s.state != DUKA_CONN_DEGRADED)
            fail_msg("%s from offline: %s, expected degraded", cases[i].what,
                     duka_conn_state_name(s.state));
        assert_next_probe_in(f, default_settings.probe_interval_ms);
        assert_int_equal(f->rec.count, 2);
        assert_event(&f->rec, 1, DUKA_CONN_OFFLINE, DUKA_CONN_DEGRADED, T0 + 2000);
        fixture_free(f);
    }
}

/* ---- when the next probe is due ---- */

static void test_offline_delay_table(void **state)
{
    (void)state;
    const struct {
        int64_t interval_ms, recheck_max_ms;
        int k;
        int64_t delay_ms;
    } cases[] = {
        /* defaults: 1 s, 2 s, 4 s, then 4 s */
        {30000, 4000, 1, 1000},
        {30000, 4000, 2, 2000},
        {30000, 4000, 3, 4000},
        {30000, 4000, 4, 4000},
        {30000, 4000, 50, 4000},
        /* a larger recheck max: doubling up to it */
        {30000, 16000, 4, 8000},
        {30000, 16000, 5, 16000},
        {30000, 16000, 6, 16000},
        /* the interval is the cap when it is the smaller */
        {5000, 60000, 3, 4000},
        {5000, 60000, 4, 5000},
        {5000, 60000, 9, 5000},
        /* a cap that is not a power of two times 1 s */
        {30000, 3000, 2, 2000},
        {30000, 3000, 3, 3000},
        /* a cap below 1 s: every delay is the cap */
        {30000, 100, 1, 100},
        {30000, 100, 7, 100},
        {500, 4000, 1, 500},
        /* never overflows, whatever k */
        {86400000, 86400000, 1000, 86400000},
        {86400000, 86400000, 2147483647, 86400000},
        /* k < 1 is treated as the first */
        {30000, 4000, 0, 1000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_monitor_settings s = default_settings;
        s.probe_interval_ms = cases[i].interval_ms;
        s.offline_recheck_max_ms = cases[i].recheck_max_ms;
        int64_t got = duka_monitor_offline_delay_ms(&s, cases[i].k);
        if (got != cases[i].delay_ms)
            fail_msg("case %zu: interval %lld, recheck max %lld, k %d: %lld ms, expected %lld",
                     i, (long long)cases[i].interval_ms, (long long)cases[i].recheck_max_ms,
                     cases[i].k, (long long)got, (long long)cases[i].delay_ms);
    }
}

/* Reports `not reached` each time a probe is due and checks the delay each one schedules. */
static void assert_offline_schedule(fixture *f, const int64_t *delays, int n)
{
    for (int i = 0; i < n; i++) {
        f->clock.now_ms = snapshot(f).next_probe_ms; /* the probe runs when it is due */
        report_at(f, 0, not_reached());
        assert_state(f, DUKA_CONN_OFFLINE);
        duka_monitor_snapshot s = snapshot(f);
        if (s.next_probe_ms - f->clock.now_ms != delays[i])
            fail_msg("failed probe %d: next in %lld ms, expected %lld", i + 1,
                     (long long)(s.next_probe_ms - f->clock.now_ms), (long long)delays[i]);
    }
}

static void test_offline_backoff_through_reports(void **state)
{
    (void)state;
    duka_monitor_settings s = default_settings;
    s.offline_recheck_max_ms = 16000;
    fixture *f = fixture_new(&s);
    const int64_t first[] = {1000, 2000, 4000, 8000, 16000, 16000, 16000};
    assert_offline_schedule(f, first, 7);
    /* Offline -> offline is not an event. */
    assert_int_equal(f->rec.count, 1);
    assert_event(&f->rec, 0, DUKA_CONN_UNKNOWN, DUKA_CONN_OFFLINE, T0);
    assert_int_equal(snapshot(f).since_ms, T0);
    assert_int_equal(snapshot(f).consecutive_failures, 7);

    /* The hub comes back: probed at the interval; then gone again: 1 s again. */
    f->clock.now_ms = snapshot(f).next_probe_ms;
    report_at(f, 0, fast_ok());
    assert_state(f, DUKA_CONN_ONLINE);
    assert_next_probe_in(f, s.probe_interval_ms);
    f->clock.now_ms = snapshot(f).next_probe_ms;
    const int64_t again[] = {1000, 2000, 4000};
    assert_offline_schedule(f, again, 3);
    fixture_free(f);

    /* An interval shorter than the recheck max caps the delay. */
    s.probe_interval_ms = 5000;
    s.offline_recheck_max_ms = 60000;
    f = fixture_new(&s);
    const int64_t capped[] = {1000, 2000, 4000, 5000, 5000};
    assert_offline_schedule(f, capped, 5);
    fixture_free(f);
}

static void test_next_probe_while_answering_is_the_interval(void **state)
{
    fixture *f = *state;
    const duka_hub_outcome outcomes[] = {fast_ok(), fast_ok(), slow_ok(), server_error(),
                                         answered(401, 10), services_down(), fast_ok()};
    for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
        report_at(f, 777, outcomes[i]);
        assert_next_probe_in(f, default_settings.probe_interval_ms);
    }
}

/*
 * The offline backoff is for a hub that does not answer: it starts at 1 s when the hub goes
 * away (connectivity.h: "While offline it is re-probed after 1 s, 2 s, 4 s …"; the issue:
 * "while offline it re-probes with backoff starting at 1 s"). 5xx answers before the hub
 * went away are not offline probes and must not make the first re-probe later.
 */
static void test_offline_backoff_starts_at_1s_after_5xx(void **state)
{
    fixture *f = *state;
    go_online(f);
    for (int i = 0; i < default_settings.degraded_failures; i++)
        report_at(f, 1000, server_error());
    assert_state(f, DUKA_CONN_DEGRADED);
    report_at(f, 30000, not_reached());
    assert_state(f, DUKA_CONN_OFFLINE);
    duka_monitor_snapshot s = snapshot(f);
    if (s.next_probe_ms - f->clock.now_ms != 1000)
        fail_msg("degraded (%d x 5xx) -> offline: first re-probe in %lld ms, expected 1000",
                 default_settings.degraded_failures,
                 (long long)(s.next_probe_ms - f->clock.now_ms));
}

/* Same: a hub that answered (slowly) between two outages starts a new outage at 1 s. */
static void test_offline_backoff_restarts_after_a_slow_answer(void **state)
{
    fixture *f = *state;
    const int64_t first[] = {1000, 2000, 4000, 4000};
    assert_offline_schedule(f, first, 4);
    f->clock.now_ms = snapshot(f).next_probe_ms;
    report_at(f, 0, slow_ok());
    assert_state(f, DUKA_CONN_DEGRADED);
    report_at(f, 30000, not_reached());
    assert_state(f, DUKA_CONN_OFFLINE);
    duka_monitor_snapshot s = snapshot(f);
    if (s.next_probe_ms - f->clock.now_ms != 1000)
        fail_msg("offline -> degraded (slow answer) -> offline: first re-probe in %lld ms,"
                 " expected 1000",
                 (long long)(s.next_probe_ms - f->clock.now_ms));
}

/* ---- listeners ---- */

static void test_listener_called_once_per_change(void **state)
{
    fixture *f = *state;
    const struct {
        duka_hub_outcome outcome;
        bool changes;
        duka_conn_state to;
    } steps[] = {
        {fast_ok(), true, DUKA_CONN_ONLINE},       {fast_ok(), false, DUKA_CONN_ONLINE},
        {slow_ok(), true, DUKA_CONN_DEGRADED},     {slow_ok(), false, DUKA_CONN_DEGRADED},
        {server_error(), false, DUKA_CONN_DEGRADED}, {not_reached(), true, DUKA_CONN_OFFLINE},
        {not_reached(), false, DUKA_CONN_OFFLINE}, {server_error(), true, DUKA_CONN_DEGRADED},
        {fast_ok(), true, DUKA_CONN_ONLINE},       {not_reached(), true, DUKA_CONN_OFFLINE},
        {fast_ok(), true, DUKA_CONN_ONLINE},
    };
    duka_conn_state from = DUKA_CONN_UNKNOWN;
    int expected_events = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        report_at(f, 1000, steps[i].outcome);
        assert_state(f, steps[i].to);
        if (steps[i].changes) {
            assert_event(&f->rec, expected_events, from, steps[i].to, f->clock.now_ms);
            expected_events++;
            assert_int_equal(snapshot(f).since_ms, f->clock.now_ms);
        }
        if (f->rec.count != expected_events)
            fail_msg("step %zu: %d events, expected %d", i, f->rec.count, expected_events);
        from = steps[i].to;
    }
    /* A recorded sync changes no state: no event. */
    duka_monitor_sync_succeeded(f->m);
    assert_int_equal(f->rec.count, expected_events);
}

typedef struct counter {
    int calls;
    duka_conn_state last_to;
} counter;

static void count_call(void *ctx, duka_conn_state from, duka_conn_state to, int64_t at_ms)
{
    (void)from;
    (void)at_ms;
    counter *c = ctx;
    c->calls++;
    c->last_to = to;
}

static void test_listeners_up_to_max(void **state)
{
    fixture *f = *state; /* the recorder is subscriber 1 */
    counter counters[DUKA_MONITOR_LISTENERS_MAX + 1];
    memset(counters, 0, sizeof(counters));
    for (int i = 1; i < DUKA_MONITOR_LISTENERS_MAX; i++)
        assert_true(duka_monitor_subscribe(f->m, count_call, &counters[i]));
    /* One more than the limit is refused. */
    assert_false(duka_monitor_subscribe(f->m, count_call, &counters[0]));
    assert_false(duka_monitor_subscribe(f->m, count_call, &counters[DUKA_MONITOR_LISTENERS_MAX]));

    report_at(f, 1000, fast_ok());
    report_at(f, 1000, fast_ok()); /* no change */
    report_at(f, 1000, not_reached());
    for (int i = 1; i < DUKA_MONITOR_LISTENERS_MAX; i++) {
        assert_int_equal(counters[i].calls, 2);
        assert_int_equal(counters[i].last_to, DUKA_CONN_OFFLINE);
    }
    assert_int_equal(counters[0].calls, 0);
    assert_int_equal(counters[DUKA_MONITOR_LISTENERS_MAX].calls, 0);
    assert_int_equal(f->rec.count, 2);
}

static void test_listener_may_read_the_monitor(void **state)
{
    fixture *f = *state;
    f->rec.monitor = f->m; /* the recorder now calls duka_monitor_get from the callback */
    report_at(f, 1000, fast_ok());
    report_at(f, 1000, not_reached());
    duka_monitor_force_offline(f->m, true); /* offline already: no event */
    duka_monitor_force_offline(f->m, false);
    assert_int_equal(f->rec.count, 3);
    /* The snapshot a listener reads already shows the new state. */
    assert_int_equal(f->rec.seen_state[0], DUKA_CONN_ONLINE);
    assert_int_equal(f->rec.seen_state[1], DUKA_CONN_OFFLINE);
    assert_int_equal(f->rec.seen_state[2], DUKA_CONN_UNKNOWN);
}

/* ---- the offline switch ---- */

static void test_force_offline(void **state)
{
    fixture *f = *state;
    go_online(f);
    f->clock.now_ms += 5000;
    duka_monitor_force_offline(f->m, true);
    duka_monitor_snapshot s = snapshot(f);
    assert_int_equal(s.state, DUKA_CONN_OFFLINE);
    assert_true(s.forced_offline);
    assert_int_equal(s.next_probe_ms, INT64_MAX);
    assert_int_equal(s.since_ms, T0 + 6000);
    assert_int_equal(s.last_ok_ms, T0 + 1000);
    assert_string_equal(s.last_error, "switched offline by hand");
    assert_int_equal(f->rec.count, 2);
    assert_event(&f->rec, 1, DUKA_CONN_ONLINE, DUKA_CONN_OFFLINE, T0 + 6000);

    /* While forced, every report is ignored: state, times, counters, error. */
    const duka_hub_outcome ignored[] = {fast_ok(), slow_ok(), server_error(), not_reached()};
    for (int i = 0; i < 4; i++) {
        report_at(f, 1000, ignored[i]);
        duka_monitor_snapshot t = snapshot(f);
        assert_int_equal(t.state, DUKA_CONN_OFFLINE);
        assert_true(t.forced_offline);
        assert_int_equal(t.next_probe_ms, INT64_MAX);
        assert_int_equal(t.last_ok_ms, T0 + 1000);
        assert_int_equal(t.consecutive_failures, 0);
        assert_string_equal(t.last_error, "switched offline by hand");
    }
    /* Switching on twice is one event. */
    duka_monitor_force_offline(f->m, true);
    assert_int_equal(f->rec.count, 2);

    /* Off: unknown with a probe due now, then the next answer decides. */
    f->clock.now_ms += 60000;
    const int64_t off_at = f->clock.now_ms;
    duka_monitor_force_offline(f->m, false);
    s = snapshot(f);
    assert_int_equal(s.state, DUKA_CONN_UNKNOWN);
    assert_false(s.forced_offline);
    assert_int_equal(s.next_probe_ms, off_at);
    assert_int_equal(s.since_ms, off_at);
    assert_int_equal(s.consecutive_failures, 0);
    assert_string_equal(s.last_error, ""); /* "switched offline by hand" no longer holds */
    assert_int_equal(f->rec.count, 3);
    assert_event(&f->rec, 2, DUKA_CONN_OFFLINE, DUKA_CONN_UNKNOWN, off_at);
    /* Switching off when it is not on changes nothing. */
    duka_monitor_force_offline(f->m, false);
    assert_int_equal(f->rec.count, 3);
    assert_int_equal(snapshot(f).next_probe_ms, off_at);

    report_at(f, 300, fast_ok());
    assert_state(f, DUKA_CONN_ONLINE);
    assert_int_equal(f->rec.count, 4);
    assert_event(&f->rec, 3, DUKA_CONN_UNKNOWN, DUKA_CONN_ONLINE, off_at + 300);
}

static void test_force_offline_from_each_state(void **state)
{
    (void)state;
    const duka_hub_outcome to_reach[] = {fast_ok(), slow_ok(), not_reached()};
    /* From unknown (no report), online, degraded and (already) offline. */
    for (int i = -1; i < 3; i++) {
        fixture *f = fixture_new(&default_settings);
        if (i >= 0)
            report_at(f, 1000, to_reach[i]);
        int before = f->rec.count;
        duka_conn_state was = snapshot(f).state;
        f->clock.now_ms += 1000;
        duka_monitor_force_offline(f->m, true);
        duka_monitor_snapshot s = snapshot(f);
        assert_int_equal(s.state, DUKA_CONN_OFFLINE);
        assert_true(s.forced_offline);
        assert_int_equal(s.next_probe_ms, INT64_MAX);
        if (was == DUKA_CONN_OFFLINE) {
            assert_int_equal(f->rec.count, before); /* no change of state, no event */
        } else {
            assert_int_equal(f->rec.count, before + 1);
            assert_event(&f->rec, before, was, DUKA_CONN_OFFLINE, f->clock.now_ms);
        }
        duka_monitor_force_offline(f->m, false);
        assert_state(f, DUKA_CONN_UNKNOWN);
        assert_int_equal(snapshot(f).next_probe_ms, f->clock.now_ms);
        fixture_free(f);
    }
}

/* ---- what the snapshot keeps ---- */

static void test_snapshot_times_errors_and_failures(void **state)
{
    fixture *f = *state;
    /* last_sync_ms: only what sync_succeeded records, at the clock's time. */
    assert_int_equal(snapshot(f).last_sync_ms, 0);
    report_at(f, 1000, fast_ok());
    assert_int_equal(snapshot(f).last_sync_ms, 0);
    f->clock.now_ms += 500;
    duka_monitor_sync_succeeded(f->m);
    assert_int_equal(snapshot(f).last_sync_ms, T0 + 1500);

    /* last_ok_ms: the last good answer; slow, 5xx and no answer leave it. */
    assert_int_equal(snapshot(f).last_ok_ms, T0 + 1000);
    report_at(f, 1000, slow_ok());
    report_at(f, 1000, server_error());
    report_at(f, 1000, not_reached());
    assert_int_equal(snapshot(f).last_ok_ms, T0 + 1000);

    /* consecutive_failures: no answer and 5xx count; a good answer resets. */
    assert_int_equal(snapshot(f).consecutive_failures, 2);
    report_at(f, 1000, not_reached());
    report_at(f, 1000, server_error());
    assert_int_equal(snapshot(f).consecutive_failures, 4);
    report_at(f, 1000, fast_ok());
    assert_int_equal(snapshot(f).consecutive_failures, 0);
    assert_int_equal(snapshot(f).last_ok_ms, f->clock.now_ms);

    /* last_error: the latest error sentence while it explains the state; a good answer
     * (online again) clears it — a green light with "hub unreachable" beside it is a lie. A
     * slow answer (degraded) without an error of its own keeps it. */
    duka_hub_outcome o = not_reached();
    o.error = "timed out after 5000 ms";
    report_at(f, 1000, o);
    assert_string_equal(snapshot(f).last_error, "timed out after 5000 ms");
    duka_hub_outcome slow = fast_ok();
    slow.latency_ms = 60000;
    report_at(f, 1000, slow);
    assert_int_equal(snapshot(f).state, DUKA_CONN_DEGRADED);
    assert_string_equal(snapshot(f).last_error, "timed out after 5000 ms");
    report_at(f, 1000, fast_ok());
    assert_int_equal(snapshot(f).state, DUKA_CONN_ONLINE);
    assert_string_equal(snapshot(f).last_error, "");

    /* A long error is cut to fit, still terminated. */
    char long_error[DUKA_MONITOR_ERROR_MAX * 2];
    memset(long_error, 'e', sizeof(long_error) - 1);
    long_error[sizeof(long_error) - 1] = '\0';
    o.error = long_error;
    report_at(f, 1000, o);
    duka_monitor_snapshot s = snapshot(f);
    assert_int_equal(strlen(s.last_error), DUKA_MONITOR_ERROR_MAX - 1);
    assert_memory_equal(s.last_error, long_error, DUKA_MONITOR_ERROR_MAX - 1);

    /* The sync time survives state changes and the offline switch. */
    duka_monitor_force_offline(f->m, true);
    duka_monitor_sync_succeeded(f->m);
    assert_int_equal(snapshot(f).last_sync_ms, f->clock.now_ms);
    duka_monitor_force_offline(f->m, false);
    assert_int_equal(snapshot(f).last_sync_ms, f->clock.now_ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),
        cmocka_unit_test_setup_teardown(test_starts_unknown_with_probe_due_now, setup, teardown),
        cmocka_unit_test(test_system_clock_and_null_destroy),
        cmocka_unit_test_setup_teardown(test_unknown_to_online, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_to_offline, setup, teardown),
        cmocka_unit_test(test_unknown_to_degraded),
        cmocka_unit_test_setup_teardown(test_online_to_degraded_after_n_5xx_not_before, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_success_between_5xx_resets_the_count, setup,
                                        teardown),
        cmocka_unit_test(test_degraded_failures_setting_is_used),
        cmocka_unit_test(test_online_to_degraded_at_once_when_slow_or_services_down),
        cmocka_unit_test_setup_teardown(test_online_to_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_degraded_to_online, setup, teardown),
        cmocka_unit_test_setup_teardown(test_degraded_stays_degraded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_degraded_to_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_to_online, setup, teardown),
        cmocka_unit_test(test_offline_to_degraded),
        cmocka_unit_test(test_offline_delay_table),
        cmocka_unit_test(test_offline_backoff_through_reports),
        cmocka_unit_test_setup_teardown(test_next_probe_while_answering_is_the_interval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_offline_backoff_starts_at_1s_after_5xx, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_offline_backoff_restarts_after_a_slow_answer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_listener_called_once_per_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listeners_up_to_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener_may_read_the_monitor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_force_offline, setup, teardown),
        cmocka_unit_test(test_force_offline_from_each_state),
        cmocka_unit_test_setup_teardown(test_snapshot_times_errors_and_failures, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
