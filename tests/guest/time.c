// time: clocks, sleeping, interval timers and alarm; prints only relations between times.
#include "check.h"
#include <sys/time.h>
#include <sys/times.h>
#include <time.h>

static double seconds(struct timespec t) { return t.tv_sec + t.tv_nsec / 1e9; }

static double now(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return seconds(t);
}

static void burn_cpu(void) {
  volatile unsigned long x = 0;
  for (unsigned long i = 0; i < 3000000; i++) x += i;
}

static void test_clocks(void) {
  SECTION("clock_gettime/clock_getres");
  static const struct {
    clockid_t id;
    const char *name;
  } clocks[] = {
      {CLOCK_REALTIME, "CLOCK_REALTIME"},
      {CLOCK_MONOTONIC, "CLOCK_MONOTONIC"},
      {CLOCK_BOOTTIME, "CLOCK_BOOTTIME"},
      {CLOCK_PROCESS_CPUTIME_ID, "CLOCK_PROCESS_CPUTIME_ID"},
      {CLOCK_THREAD_CPUTIME_ID, "CLOCK_THREAD_CPUTIME_ID"},
      {CLOCK_MONOTONIC_RAW, "CLOCK_MONOTONIC_RAW"},
      {CLOCK_REALTIME_COARSE, "CLOCK_REALTIME_COARSE"},
      {CLOCK_MONOTONIC_COARSE, "CLOCK_MONOTONIC_COARSE"},
  };
  for (unsigned i = 0; i < sizeof clocks / sizeof *clocks; i++) {
    struct timespec a, b, res;
    int r1 = clock_gettime(clocks[i].id, &a);
    burn_cpu();
    int r2 = clock_gettime(clocks[i].id, &b);
    int r3 = clock_getres(clocks[i].id, &res);
    printf("%s: gettime %d %d, nsec in range %d, not going back %d, getres %d, res in (0, 10ms] %d\n",
           clocks[i].name, r1, r2, a.tv_nsec >= 0 && a.tv_nsec < 1000000000,
           seconds(b) >= seconds(a), r3,
           res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec <= 10000000);
  }
  FACT(now(CLOCK_REALTIME) > 1.6e9);
  FACT(now(CLOCK_BOOTTIME) >= now(CLOCK_MONOTONIC) - 0.001);
  double cpu = now(CLOCK_PROCESS_CPUTIME_ID);
  burn_cpu();
  FACT(now(CLOCK_PROCESS_CPUTIME_ID) > cpu);
  struct timespec t;
  SHOW(clock_gettime(12345, &t));
  SHOW(clock_getres(12345, &t));
  SHOW(clock_getres(CLOCK_MONOTONIC, NULL));
  SHOW(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)8));
  SHOW(clock_settime(CLOCK_MONOTONIC, &t));
}

static void test_wall_clock(void) {
  SECTION("gettimeofday/time");
  struct timeval tv;
  SHOW(gettimeofday(&tv, NULL));
  FACT(tv.tv_usec >= 0 && tv.tv_usec < 1000000);
  double real = now(CLOCK_REALTIME);
  FACT(tv.tv_sec + tv.tv_usec / 1e6 <= real + 0.001);
  FACT(real - (tv.tv_sec + tv.tv_usec / 1e6) < 1.0);
  time_t t1 = time(NULL), t2;
  time(&t2);
  FACT(t2 >= t1 && t2 - t1 <= 1);
  FACT(t1 >= (time_t)real - 1 && t1 <= (time_t)real + 1);
  struct tm tm;
  time_t fixed = 1234567890;
  gmtime_r(&fixed, &tm);
  char text[64];
  strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  printf("gmtime(1234567890) = %s\n", text);
  localtime_r(&fixed, &tm); /* TZ=UTC */
  printf("localtime hour = %d\n", tm.tm_hour);
}

static volatile int alarms;
static void on_alarm(int sig) {
  (void)sig;
  alarms++;
}

static void test_sleep(void) {
  SECTION("nanosleep/clock_nanosleep");
  double start = now(CLOCK_MONOTONIC);
  struct timespec ten_ms = {0, 10000000}, rem;
  SHOW(nanosleep(&ten_ms, NULL));
  FACT(now(CLOCK_MONOTONIC) - start >= 0.010);
  struct timespec bad = {0, 1000000000};
  SHOW(nanosleep(&bad, NULL));
  struct timespec negative = {-1, 0};
  SHOW(nanosleep(&negative, NULL));
  struct timespec zero = {0, 0};
  SHOW(nanosleep(&zero, NULL));

  start = now(CLOCK_MONOTONIC);
  SHOWE(clock_nanosleep(CLOCK_MONOTONIC, 0, &ten_ms, NULL));
  FACT(now(CLOCK_MONOTONIC) - start >= 0.010);
  struct timespec target;
  clock_gettime(CLOCK_MONOTONIC, &target);
  target.tv_nsec += 20000000;
  if (target.tv_nsec >= 1000000000) target.tv_sec++, target.tv_nsec -= 1000000000;
  SHOWE(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, NULL));
  FACT(now(CLOCK_MONOTONIC) >= seconds(target));
  SHOWE(clock_nanosleep(CLOCK_REALTIME, 0, &ten_ms, NULL));
  SHOWE(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL));
  SHOWE(clock_nanosleep(12345, 0, &ten_ms, NULL));

  /* a signal interrupts a long sleep; the remaining time is reported */
  signal(SIGALRM, on_alarm);
  /* repeating, so that a slow start cannot let the only tick pass before the sleep */
  struct itimerval ticks = {{0, 300000}, {0, 300000}}, off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &ticks, NULL);
  struct timespec two_seconds = {2, 0};
  start = now(CLOCK_MONOTONIC);
  SHOW(nanosleep(&two_seconds, &rem));
  setitimer(ITIMER_REAL, &off, NULL);
  FACT(now(CLOCK_MONOTONIC) - start < 1.9);
  FACT(seconds(rem) > 0.1 && seconds(rem) < 2.0);
  FACT(alarms >= 1);
}

static void test_times(void) {
  SECTION("times/getrusage");
  struct tms t;
  burn_cpu();
  clock_t r = times(&t);
  FACT(r != (clock_t)-1);
  FACT(t.tms_utime + t.tms_stime >= 0);
  FACT(t.tms_cutime == 0 && t.tms_cstime == 0);
  FACT(times(NULL) != (clock_t)-1);
  printf("sysconf(_SC_CLK_TCK) = %ld\n", sysconf(_SC_CLK_TCK));
}

static void test_itimer(void) {
  SECTION("setitimer/getitimer");
  alarms = 0;
  struct sigaction sa = {0};
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval every = {{0, 10000}, {0, 10000}}, old, cur;
  double start = now(CLOCK_MONOTONIC);
  SHOW(setitimer(ITIMER_REAL, &every, &old));
  printf("old timer zero: %s\n",
         old.it_value.tv_sec == 0 && old.it_value.tv_usec == 0 ? "true" : "false");
  SHOW(getitimer(ITIMER_REAL, &cur));
  printf("interval = %ld.%06ld\n", (long)cur.it_interval.tv_sec, (long)cur.it_interval.tv_usec);
  FACT(cur.it_value.tv_sec == 0 && cur.it_value.tv_usec > 0 && cur.it_value.tv_usec <= 10000);
  while (alarms < 3) pause();
  FACT(now(CLOCK_MONOTONIC) - start >= 0.030);
  struct itimerval off = {{0, 0}, {0, 0}};
  SHOW(setitimer(ITIMER_REAL, &off, &old));
  printf("old interval = %ld.%06ld\n", (long)old.it_interval.tv_sec,
         (long)old.it_interval.tv_usec);
  SHOW(getitimer(ITIMER_REAL, &cur));
  FACT(cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0);
  struct itimerval bad = {{0, 0}, {0, 1000000}};
  SHOW(setitimer(ITIMER_REAL, &bad, NULL));
  SHOW(setitimer(12345, &every, NULL));
  SHOW(getitimer(12345, &cur));
  SHOW(getitimer(ITIMER_VIRTUAL, &cur));
  SHOW(getitimer(ITIMER_PROF, &cur));
}

static void test_alarm(void) {
  SECTION("alarm/pause");
  alarms = 0;
  SHOW(alarm(5));
  SHOW(alarm(0)); /* the remaining 5 s, rounded */
  SHOW(alarm(0));
  double start = now(CLOCK_MONOTONIC);
  SHOW(alarm(1));
  SHOW(pause());
  printf("alarms = %d\n", alarms);
  FACT(now(CLOCK_MONOTONIC) - start >= 0.9);
}

int main(void) {
  test_clocks();
  test_wall_clock();
  test_sleep();
  test_times();
  test_itimer();
  test_alarm();
  return 0;
}
