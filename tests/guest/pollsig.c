// pollsig: readiness calls and signals: EINTR (never restarted), ppoll/pselect/epoll_pwait
// masks, signalfd read/poll/epoll.
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/time.h>

static volatile int caught;
static sigset_t mask_in_handler;

static void on_signal(int sig) {
  caught = sig;
  sigprocmask(SIG_BLOCK, NULL, &mask_in_handler);
}

static void handle(int sig, int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = flags;
  sigaction(sig, &sa, NULL);
}

static void arm_alarm_ms(int ms) {
  struct itimerval it = {{0, 0}, {0, ms * 1000}};
  setitimer(ITIMER_REAL, &it, NULL);
}

static int blocked(int sig) {
  sigset_t cur;
  sigprocmask(SIG_BLOCK, NULL, &cur);
  return sigismember(&cur, sig);
}

static void test_eintr(void) {
  SECTION("EINTR, even with SA_RESTART");
  int p[2];
  pipe(p);
  struct pollfd pfd = {p[0], POLLIN, 0};
  handle(SIGALRM, SA_RESTART);
  caught = 0;
  arm_alarm_ms(20);
  SHOW(poll(&pfd, 1, 5000));
  printf("  caught %s\n", signame(caught));

  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(p[0], &rd);
  struct timeval tv = {5, 0};
  caught = 0;
  arm_alarm_ms(20);
  SHOW(syscall(SYS_select, p[0] + 1, &rd, NULL, NULL, &tv)); /* libcs may pass a copy */
  printf("  caught %s\n", signame(caught));
  FACT(tv.tv_sec < 5 && tv.tv_sec >= 3); /* select writes back the time left */

  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7}, out[2];
  epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
  caught = 0;
  arm_alarm_ms(20);
  SHOW(epoll_wait(ep, out, 2, 5000));
  printf("  caught %s\n", signame(caught));
  close(ep);
  close(p[0]);
  close(p[1]);
}

static void test_masks(void) {
  SECTION("ppoll/pselect/epoll_pwait masks");
  int p[2];
  pipe(p);
  struct pollfd pfd = {p[0], POLLIN, 0};
  handle(SIGUSR1, 0);
  sigset_t block, empty;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigemptyset(&empty);
  sigprocmask(SIG_BLOCK, &block, NULL);

  /* pending and blocked: the temporary mask lets it in at once */
  raise(SIGUSR1);
  caught = 0;
  struct timespec ts = {5, 0};
  SHOW(ppoll(&pfd, 1, &ts, &empty));
  printf("  caught %s\n", signame(caught));
  printf("  in handler: SIGUSR1 blocked %d\n", sigismember(&mask_in_handler, SIGUSR1));
  printf("  after: SIGUSR1 blocked %d\n", blocked(SIGUSR1));

  /* ready descriptors win: the signal stays pending under the old mask */
  write(p[1], "x", 1);
  raise(SIGUSR1);
  caught = 0;
  SHOW(ppoll(&pfd, 1, &ts, &empty));
  printf("  caught %s\n", caught ? signame(caught) : "nothing");
  sigset_t pending;
  sigpending(&pending);
  printf("  SIGUSR1 pending %d\n", sigismember(&pending, SIGUSR1));
  char c;
  read(p[0], &c, 1);
  SHOW(sigprocmask(SIG_UNBLOCK, &block, NULL));
  printf("  caught %s\n", caught ? signame(caught) : "nothing");
  sigprocmask(SIG_BLOCK, &block, NULL);

  raise(SIGUSR1);
  caught = 0;
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(p[0], &rd);
  SHOW(pselect(p[0] + 1, &rd, NULL, NULL, &ts, &empty));
  printf("  caught %s, after: SIGUSR1 blocked %d\n", signame(caught), blocked(SIGUSR1));

  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN}, out[2];
  epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
  raise(SIGUSR1);
  caught = 0;
  SHOW(epoll_pwait(ep, out, 2, 5000, &empty));
  printf("  caught %s, after: SIGUSR1 blocked %d\n", signame(caught), blocked(SIGUSR1));
  SHOW(epoll_pwait(ep, out, 2, 0, &empty));
  SHOW(syscall(SYS_epoll_pwait, ep, out, 2, 0, &empty, 4));
  close(ep);
  sigprocmask(SIG_UNBLOCK, &block, NULL);
  close(p[0]);
  close(p[1]);
}

static void test_signalfd(void) {
  SECTION("signalfd");
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  sigaddset(&set, SIGALRM);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int fd = SHOW(signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  SHOW(fcntl(fd, F_GETFD));
  struct signalfd_siginfo si[2];
  SHOW(read(fd, si, sizeof si));
  SHOW(read(fd, si, 8));
  struct pollfd pfd = {fd, POLLIN, 0};
  SHOW(poll(&pfd, 1, 0));

  raise(SIGUSR2);
  SHOW(poll(&pfd, 1, 0));
  printf("  revents POLLIN %d\n", !!(pfd.revents & POLLIN));
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42}, out[2];
  SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
  SHOW(epoll_wait(ep, out, 2, 0));
  printf("  tag %lu\n", (unsigned long)out[0].data.u64);
  memset(si, 0, sizeof si);
  SHOW(read(fd, si, sizeof si));
  printf("  ssi_signo %s code %d pid ok %d uid ok %d\n", signame(si[0].ssi_signo),
         si[0].ssi_code, si[0].ssi_pid == (unsigned)getpid(), si[0].ssi_uid == getuid());
  SHOW(poll(&pfd, 1, 0));
  SHOW(epoll_wait(ep, out, 2, 0));

  /* a blocking read waits for the timer's signal */
  int fd2 = SHOW(signalfd(-1, &set, 0));
  arm_alarm_ms(20);
  SHOW(read(fd2, si, sizeof si));
  printf("  ssi_signo %s code %s\n", signame(si[0].ssi_signo), codename(si[0].ssi_signo, si[0].ssi_code));
  sigset_t pending;
  sigpending(&pending);
  printf("  SIGALRM still pending %d\n", sigismember(&pending, SIGALRM));

  /* sigqueue values come through */
  union sigval v = {.sival_int = 1234};
  sigqueue(getpid(), SIGUSR2, v);
  SHOW(read(fd, si, sizeof si));
  printf("  ssi_code SI_QUEUE %d ssi_int %d\n", si[0].ssi_code == SI_QUEUE, si[0].ssi_int);

  /* changing the mask of an existing signalfd; errors */
  sigset_t other;
  sigemptyset(&other);
  sigaddset(&other, SIGUSR1);
  SHOW(signalfd(fd, &other, 0) == fd);
  SHOW(signalfd(ep, &other, 0));
  SHOW(signalfd(-1, &other, 0x1));
  SHOW(syscall(SYS_signalfd4, -1, &other, 4, 0));
  SHOW(signalfd(1000, &other, 0));
  close(fd2);
  close(ep);
  close(fd);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  test_eintr();
  test_masks();
  test_signalfd();
  return 0;
}
