// time_timers: POSIX timers (timer_create & co), sleeps cut short by a handler, adjtimex.
#include "check.h"
#include <sys/time.h>
#include <sys/timex.h>
#include <time.h>

static double seconds(struct timespec t) { return t.tv_sec + t.tv_nsec / 1e9; }

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return seconds(t);
}

static volatile int fired, last_code, last_value, last_overrun;
static void on_timer(int sig, siginfo_t *si, void *ctx) {
  (void)sig, (void)ctx;
  fired++;
  last_code = si->si_code;
  last_value = si->si_value.sival_int;
  last_overrun = si->si_overrun;
}

static timer_t make_timer(clockid_t clock, int sig, int value) {
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = sig;
  sev.sigev_value.sival_int = value;
  timer_t id;
  if (timer_create(clock, &sev, &id) != 0) {
    printf("timer_create failed: %s\n", errname(errno));
    exit(1);
  }
  return id;
}

static void test_posix_timers(void) {
  SECTION("timer_create/settime/gettime/delete");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_timer;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGUSR1, &sa, NULL);

  timer_t a = make_timer(CLOCK_MONOTONIC, SIGUSR1, 42);
  struct itimerspec cur;
  SHOW(timer_gettime(a, &cur));
  FACT(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
  struct itimerspec every = {{0, 10000000}, {0, 10000000}}, old;
  double start = now();
  SHOW(timer_settime(a, 0, &every, &old));
  FACT(old.it_value.tv_sec == 0 && old.it_value.tv_nsec == 0);
  SHOW(timer_gettime(a, &cur));
  FACT(cur.it_interval.tv_nsec == 10000000);
  FACT(cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 10000000);
  while (fired < 3) pause();
  FACT(now() - start >= 0.030);
  printf("si_code = %s, sival_int = %d\n", codename(SIGUSR1, last_code), last_value);

  /* blocked while it keeps expiring: one signal, with the overruns counted */
  sigset_t block, oldmask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigprocmask(SIG_BLOCK, &block, &oldmask);
  fired = 0;
  struct timespec sixty_ms = {0, 60000000};
  nanosleep(&sixty_ms, NULL);
  sigprocmask(SIG_SETMASK, &oldmask, NULL);
  printf("after unblocking: fired = %d\n", fired);
  FACT(last_overrun >= 2);
  FACT(timer_getoverrun(a) >= 2);

  struct itimerspec off = {{0, 0}, {0, 0}};
  SHOW(timer_settime(a, 0, &off, &old));
  FACT(old.it_interval.tv_nsec == 10000000);
  SHOW(timer_gettime(a, &cur));
  FACT(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);

  /* absolute one-shot */
  fired = 0;
  struct itimerspec at = {{0, 0}, {0, 0}};
  clock_gettime(CLOCK_MONOTONIC, &at.it_value);
  at.it_value.tv_nsec += 20000000;
  if (at.it_value.tv_nsec >= 1000000000) at.it_value.tv_sec++, at.it_value.tv_nsec -= 1000000000;
  SHOW(timer_settime(a, TIMER_ABSTIME, &at, NULL));
  while (fired < 1) pause();
  FACT(now() >= seconds(at.it_value));

  struct itimerspec bad = {{0, 0}, {0, 1000000000}};
  SHOW(timer_settime(a, 0, &bad, NULL));
  SHOW(timer_delete(a));
  SHOW(timer_gettime(a, &cur));
  SHOW(timer_delete(a));

  /* raw errors */
  int id;
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = 0;
  SHOW(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id));
  sev.sigev_signo = 65;
  SHOW(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id));
  sev.sigev_signo = SIGUSR1;
  sev.sigev_notify = 99;
  SHOW(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id));
  sev.sigev_notify = SIGEV_NONE;
  SHOW(syscall(SYS_timer_create, 12345, &sev, &id));
  SHOW(syscall(SYS_timer_create, CLOCK_MONOTONIC_RAW, &sev, &id));
  SHOW(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, (void *)8) == 0 ? 0 : -1);
  SHOW(syscall(SYS_timer_delete, 99999));
  SHOW(syscall(SYS_timer_getoverrun, 99999));

  /* SIGEV_NONE: armed, counts down, never signals */
  timer_t n;
  SHOW(timer_create(CLOCK_REALTIME, &sev, &n));
  struct itimerspec one_s = {{0, 0}, {1, 0}};
  SHOW(timer_settime(n, 0, &one_s, NULL));
  SHOW(timer_gettime(n, &cur));
  FACT(cur.it_value.tv_sec == 0 || (cur.it_value.tv_sec == 1 && cur.it_value.tv_nsec == 0));
  FACT(seconds(cur.it_value) > 0.5);
  SHOW(timer_delete(n));

  /* NULL sigevent: SIGALRM with the timer id as value */
  signal(SIGALRM, SIG_IGN);
  timer_t d;
  SHOW(timer_create(CLOCK_MONOTONIC, NULL, &d));
  SHOW(timer_delete(d));
}

static volatile int handled;
static void on_usr2(int sig) { (void)sig, handled++; }

static void test_interrupted_sleeps(void) {
  SECTION("sleeps cut short by a handled signal");
  signal(SIGUSR2, on_usr2);
  timer_t t = make_timer(CLOCK_MONOTONIC, SIGUSR2, 1);
  struct itimerspec soon = {{0, 0}, {0, 50000000}};
  timer_settime(t, 0, &soon, NULL);
  struct timespec two = {2, 0}, rem = {0, 0};
  double start = now();
  int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &two, &rem);
  printf("clock_nanosleep = %s, handled = %d\n", r ? errname(r) : "0", handled);
  FACT(now() - start < 1.5);
  FACT(seconds(rem) > 0.5 && seconds(rem) < 2.0);

  /* an ignored signal does not end the sleep */
  signal(SIGUSR2, SIG_IGN);
  timer_settime(t, 0, &soon, NULL);
  struct timespec tenth = {0, 100000000};
  start = now();
  SHOW(nanosleep(&tenth, NULL));
  FACT(now() - start >= 0.1);

  /* absolute sleeps are not restarted either, and report nothing */
  signal(SIGUSR2, on_usr2);
  timer_settime(t, 0, &soon, NULL);
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += 2;
  start = now();
  r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
  printf("absolute clock_nanosleep = %s\n", r ? errname(r) : "0");
  FACT(now() - start < 1.5);
  timer_delete(t);
}

static timer_t capped;
static volatile int capped_overrun = -2, capped_calls;
static void on_capped(int sig) {
  (void)sig;
  if (capped_calls++) return;
  capped_overrun = timer_getoverrun(capped);
  struct itimerspec off = {{0, 0}, {0, 0}};
  timer_settime(capped, 0, &off, NULL);
}

static void test_overrun_cap(void) {
  SECTION("a 1ns interval started long ago: overrun capped at INT_MAX");
  signal(SIGUSR2, on_capped);
  capped = make_timer(CLOCK_MONOTONIC, SIGUSR2, 0);
  struct itimerspec spec = {{0, 1}, {0, 0}};
  clock_gettime(CLOCK_MONOTONIC, &spec.it_value);
  spec.it_value.tv_sec -= 4;              /* 4e9 expiries ago */
  SHOW(timer_settime(capped, TIMER_ABSTIME, &spec, NULL));
  while (!capped_calls) ;
  SHOW(capped_overrun == 0x7fffffff);
  SHOW(syscall(SYS_timer_settime, capped, 0, NULL, NULL));
  SHOW(timer_delete(capped));
  signal(SIGUSR2, SIG_DFL);
}

static void test_adjtimex(void) {
  SECTION("adjtimex (reading)");
  struct timex tx;
  memset(&tx, 0, sizeof tx);
  int state = adjtimex(&tx);
  FACT(state >= 0 && state <= 5);
  FACT(tx.tick > 0);
  memset(&tx, 0, sizeof tx);
  FACT(clock_adjtime(CLOCK_REALTIME, &tx) == state);
  SHOW(syscall(SYS_adjtimex, (void *)8));
  memset(&tx, 0, sizeof tx);
  SHOW(clock_adjtime(12345, &tx));
}

/* CPU-time clocks: the process's and the thread's expire after that much computing. */
static void test_cpu_timers(void) {
  SECTION("timer_create on CPU-time clocks");
  clockid_t clocks[] = {CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID};
  for (int i = 0; i < 2; i++) {
    fired = 0;
    timer_t id = make_timer(clocks[i], SIGUSR1, 7 + i);
    struct timespec c0, c1;
    clock_gettime(clocks[i], &c0);
    struct itimerspec once = {{0, 0}, {0, 30000000}}, cur;
    SHOW(timer_settime(id, 0, &once, NULL));
    SHOW(timer_gettime(id, &cur));
    FACT(cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 30000000);
    double wall = now();
    volatile unsigned long spin = 0;
    while (!fired && now() - wall < 20) spin++;
    clock_gettime(clocks[i], &c1);
    SHOW(fired);
    FACT(seconds(c1) - seconds(c0) >= 0.030);
    printf("si_code = %s, sival_int = %d\n", codename(SIGUSR1, last_code), last_value);
    SHOW(timer_delete(id));
  }
  timer_t bad;
  SHOW(timer_create(-1 - (123456789 << 3) /* a pid's CPU clock: none */, NULL, &bad));
}

int main(void) {
  test_posix_timers();
  test_cpu_timers();
  test_interrupted_sleeps();
  test_overrun_cap();
  test_adjtimex();
  return 0;
}
