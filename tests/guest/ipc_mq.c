// ipc_mq: POSIX message queues: attributes, priorities, EMSGSIZE, non-blocking mode,
// timeouts, blocking receive woken by another process or interrupted by a signal
// (restarted with SA_RESTART), mq_notify with a signal and with a thread.
// The tests run in a child; the parent unlinks the queue whatever happened.
// cflags: -lrt -pthread
#include "check.h"
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>

static char name[64];
static volatile sig_atomic_t alarms, usr1s;
static int notify_pipe[2];

static void on_alarm(int sig) { (void)sig; alarms++; }
static void on_usr1(int sig) { (void)sig; usr1s++; }

static void on_message(union sigval v) {
  char c = (char)v.sival_int;
  write(notify_pipe[1], &c, 1);
}

static void show_attr(mqd_t q) {
  struct mq_attr a;
  if (mq_getattr(q, &a) < 0) {
    printf("mq_getattr = -1 %s\n", errname(errno));
    return;
  }
  printf("flags=%s maxmsg=%ld msgsize=%ld curmsgs=%ld\n",
         a.mq_flags & O_NONBLOCK ? "O_NONBLOCK" : "0", a.mq_maxmsg, a.mq_msgsize,
         a.mq_curmsgs);
}

static void abs_in(struct timespec *ts, long ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_nsec += ms * 1000000;
  ts->tv_sec += ts->tv_nsec / 1000000000;
  ts->tv_nsec %= 1000000000;
}

static void tests(void) {
  SECTION("open");
  struct mq_attr attr = {0, 4, 32, 0};
  mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
  FACT(q >= 0);
  SHOW(fcntl(q, F_GETFD));
  SHOW(fcntl(q, F_GETFL) & O_ACCMODE);
  show_attr(q);
  SHOW(mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr));
  struct mq_attr zero = {0, 0, 32, 0};
  SHOW(mq_open("/blinkroot-none", O_RDWR | O_CREAT, 0600, &zero));
  SHOW(mq_open("/blinkroot-none", O_RDWR));
  SHOW(mq_unlink("/blinkroot-none"));
  mqd_t ro = mq_open(name, O_RDONLY);
  FACT(ro >= 0);

  SECTION("priorities");
  SHOW(mq_send(q, "low", 4, 1));
  SHOW(mq_send(q, "high", 5, 5));
  SHOW(mq_send(q, "middle", 7, 3));
  show_attr(q);
  struct pollfd pfd = {q, POLLIN, 0};
  SHOW(poll(&pfd, 1, 0));
  char buf[64];
  unsigned prio;
  for (int i = 0; i < 3; i++) {
    long n = mq_receive(ro, buf, sizeof buf, &prio);
    printf("received %ld \"%s\" prio %u\n", n, n > 0 ? buf : "", prio);
  }
  SHOW(mq_send(ro, "x", 1, 0));
  SHOW(mq_send(q, buf, 33, 0));
  SHOW(mq_send(q, "x", 1, 40000));
  SHOW(mq_receive(q, buf, 31, NULL));
  SHOW(mq_send(q, (char *)8, 4, 0));

  SECTION("non-blocking");
  struct mq_attr nb = {O_NONBLOCK, 0, 0, 0}, old;
  SHOW(mq_setattr(q, &nb, &old));
  printf("old flags=%ld\n", old.mq_flags);
  show_attr(q);
  SHOW(fcntl(q, F_GETFL) & O_NONBLOCK ? 1 : 0);
  SHOW(mq_receive(q, buf, sizeof buf, NULL));
  for (int i = 0; i < 4; i++) mq_send(q, "fill", 5, 0);
  SHOW(mq_send(q, "full", 5, 0));
  struct mq_attr bad = {1, 0, 0, 0};
  SHOW(mq_setattr(q, &bad, NULL));
  nb.mq_flags = 0;
  SHOW(mq_setattr(q, &nb, NULL));
  struct timespec ts;
  abs_in(&ts, 20);
  SHOW(mq_timedsend(q, "full", 5, 0, &ts));
  ts.tv_nsec = -1;
  SHOW(mq_timedsend(q, "full", 5, 0, &ts));
  for (int i = 0; i < 4; i++) mq_receive(q, buf, sizeof buf, NULL);
  abs_in(&ts, 20);
  SHOW(mq_timedreceive(q, buf, sizeof buf, NULL, &ts));

  SECTION("blocking");
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    usleep(100 * 1000);
    mq_send(q, "from the child", 15, 2);
    _exit(0);
  }
  struct sigaction sa = {0};
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  ualarm(20 * 1000, 0);
  long n = mq_receive(q, buf, sizeof buf, &prio);
  printf("received %ld \"%s\" prio %u after %d alarm(s)\n", n, n > 0 ? buf : "", prio,
         (int)alarms);
  waitpid(pid, NULL, 0);
  sa.sa_flags = 0;
  sigaction(SIGALRM, &sa, NULL);
  ualarm(20 * 1000, 0);
  SHOW(mq_receive(q, buf, sizeof buf, &prio));

  SECTION("notify");
  signal(SIGUSR1, on_usr1);
  struct sigevent sev = {0};
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGUSR1;
  SHOW(mq_notify(q, &sev));
  SHOW(mq_notify(q, &sev));
  SHOW(mq_send(q, "ping", 5, 0));
  for (int i = 0; i < 100 && !usr1s; i++) usleep(1000);
  printf("SIGUSR1 handled %d time(s)\n", (int)usr1s);
  SHOW(mq_notify(q, NULL));   /* the notification was used up */
  SHOW(mq_notify(q, &sev));   /* queue not empty: no signal until it empties and refills */
  SHOW(mq_notify(q, NULL));
  SHOW(mq_receive(q, buf, sizeof buf, NULL));

  pipe(notify_pipe);
  struct sigevent tev = {0};
  tev.sigev_notify = SIGEV_THREAD;
  tev.sigev_notify_function = on_message;
  tev.sigev_value.sival_int = 'T';
  SHOW(mq_notify(q, &tev));
  SHOW(mq_send(q, "wake", 5, 0));
  char c = 0;
  SHOW(read(notify_pipe[0], &c, 1));
  printf("thread notified with '%c'\n", c);
  SHOW(mq_receive(q, buf, sizeof buf, NULL));

  SHOW(mq_close(ro));
  SHOW(mq_close(q));
  SHOW(mq_unlink(name));
  SHOW(mq_unlink(name));
}

int main(void) {
  snprintf(name, sizeof name, "/blinkroot-mq-%d", (int)getpid());
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    tests();
    fflush(stdout);
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  mq_unlink(name);
  printf("\ntests exited %d, status %d\n", WIFEXITED(st), WEXITSTATUS(st));
  return 0;
}
