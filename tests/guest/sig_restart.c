// sig_restart: blocking calls cut short by signals: sendfile and splice from an empty
// pipe (EINTR, or restarted with SA_RESTART); futex waits (a timed one ends with EINTR
// even with SA_RESTART, an untimed one restarts); timed waits across a stop and a
// SIGCONT keep their deadline (Linux restarts them with the time left; select and
// ppoll, which write back the time left when the stop interrupts them, would not).
#include "check.h"
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#define FUTEX_WAIT_PRIVATE 128 /* FUTEX_WAIT | FUTEX_PRIVATE_FLAG; musl has no linux/futex.h */

static volatile sig_atomic_t alarms;
static volatile int futex_word;

static void on_alarm(int sig) {
  (void)sig;
  alarms++;
}

static void on_alarm_set_word(int sig) {
  (void)sig;
  alarms++;
  futex_word = 1;
}

static void handle(void (*fn)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sa.sa_flags = flags;
  sigaction(SIGALRM, &sa, NULL);
}

static void alarm_in_ms(int ms) {
  struct itimerval it = {{0, 0}, {ms / 1000, ms % 1000 * 1000}};
  setitimer(ITIMER_REAL, &it, NULL);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A child that writes one byte to fd after ms milliseconds. */
static pid_t write_later(int fd, int ms) {
  pid_t pid = fork();
  if (pid == 0) {
    usleep(ms * 1000);
    write(fd, "w", 1);
    _exit(0);
  }
  return pid;
}

/* A child that empties the pipe whose read end is fd after ms milliseconds. */
static pid_t drain_later(int fd, int ms) {
  pid_t pid = fork();
  if (pid == 0) {
    usleep(ms * 1000);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    _exit(0);
  }
  return pid;
}

static void fill(int fd) {
  char buf[4096] = {0};
  fcntl(fd, F_SETFL, O_NONBLOCK);
  while (write(fd, buf, sizeof buf) > 0) {
  }
  fcntl(fd, F_SETFL, 0);
}

static void test_copies(void) {
  SECTION("sendfile to a full pipe, splice from an empty one");
  int full[2], empty[2];
  pipe(full);
  pipe(empty);
  write_file("in.txt", "0123456789");
  int in = open("in.txt", O_RDONLY);
  int out = open("out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  off_t off = 0;
  handle(on_alarm, 0);
  alarms = 0;
  fill(full[1]);
  alarm_in_ms(100);
  SHOW(sendfile(full[1], in, &off, 10));
  printf("alarms=%d off=%ld\n", (int)alarms, (long)off);
  alarm_in_ms(100);
  SHOW(splice(empty[0], NULL, out, NULL, 10, 0));
  printf("alarms=%d\n", (int)alarms);

  handle(on_alarm, SA_RESTART);
  pid_t pid = drain_later(full[0], 400);
  alarm_in_ms(100);
  SHOW(sendfile(full[1], in, &off, 10));
  printf("alarms=%d off=%ld\n", (int)alarms, (long)off);
  waitpid(pid, NULL, 0);
  pid = write_later(empty[1], 400);
  alarm_in_ms(100);
  SHOW(splice(empty[0], NULL, out, NULL, 10, 0));
  printf("alarms=%d\n", (int)alarms);
  waitpid(pid, NULL, 0);
  close(in);
  close(out);
  close(full[0]);
  close(full[1]);
  close(empty[0]);
  close(empty[1]);
}

static long futex_wait(volatile int *addr, int val, const struct timespec *timeout) {
  return syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, timeout, NULL, 0);
}

static void test_futex(void) {
  SECTION("futex waits and SA_RESTART");
  struct timespec two = {2, 0};
  handle(on_alarm, SA_RESTART);
  alarms = 0;
  futex_word = 0;
  alarm_in_ms(100);
  double start = now();
  SHOW(futex_wait(&futex_word, 0, &two));     /* timed: EINTR, not a restart */
  FACT(now() - start < 1.0);
  printf("alarms=%d\n", (int)alarms);

  /* untimed: restarted, and the restarted wait sees the word the handler changed */
  handle(on_alarm_set_word, SA_RESTART);
  alarm_in_ms(100);
  SHOW(futex_wait(&futex_word, 0, NULL));
  printf("alarms=%d word=%d\n", (int)alarms, futex_word);

  handle(on_alarm_set_word, 0);
  futex_word = 0;
  alarm_in_ms(100);
  SHOW(futex_wait(&futex_word, 0, NULL));     /* no SA_RESTART: EINTR */
  printf("alarms=%d word=%d\n", (int)alarms, futex_word);
  handle(SIG_DFL, 0);
}

/* The child waits `how` for 1.5 s and says how long it took; the parent stops it with
 * SIGTSTP (whose default action stops) for 1 s in the middle. */
static void stopped_in_the_middle(const char *how) {
  int p[2];
  pipe(p);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    write(p[1], "r", 1);
    double start = now();
    long r = 0;
    if (strcmp(how, "poll") == 0) {
      r = poll(NULL, 0, 1500);
    } else if (strcmp(how, "futex") == 0) {
      struct timespec ts = {1, 500000000};
      r = futex_wait(&futex_word, futex_word, &ts);
    } else if (strcmp(how, "nanosleep") == 0) {
      struct timespec ts = {1, 500000000};
      r = nanosleep(&ts, NULL);
    }
    int e = errno;
    double took = now() - start;
    char line[128];
    int n = snprintf(line, sizeof line, "%s: %ld%s%s, took 1.3-2.2 s: %s\n", how, r,
                     r < 0 ? " " : "", r < 0 ? errname(e) : "",
                     took > 1.3 && took < 2.2 ? "yes" : "no");
    write(p[1], line, n);
    _exit(0);
  }
  close(p[1]);
  char c;
  read(p[0], &c, 1);
  usleep(200000);
  kill(pid, SIGTSTP);
  int status;
  waitpid(pid, &status, WUNTRACED);
  printf("%s: stopped by %s\n", how, WIFSTOPPED(status) ? signame(WSTOPSIG(status)) : "?");
  usleep(1000000);
  kill(pid, SIGCONT);
  char line[128] = {0};
  int got = 0, n;
  while ((n = read(p[0], line + got, sizeof line - 1 - got)) > 0) got += n;
  printf("%s", line);
  waitpid(pid, &status, 0);
  close(p[0]);
}

static void test_stops(void) {
  SECTION("timed waits across a stop");
  stopped_in_the_middle("poll");
  stopped_in_the_middle("futex");
  stopped_in_the_middle("nanosleep");
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  test_copies();
  test_futex();
  test_stops();
  return 0;
}
