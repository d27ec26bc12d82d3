// pidfd: pidfd_open flags and errors, readiness when the process exits, signals sent
// through a pidfd to a child and to ourselves (with and without a siginfo), pidfd_getfd
// on our own descriptors.
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#define PIDFD_NONBLOCK O_NONBLOCK

static int pidfd_open(pid_t pid, unsigned flags) { return syscall(SYS_pidfd_open, pid, flags); }
static int pidfd_send_signal(int fd, int sig, siginfo_t *info, unsigned flags) {
  return syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}
static int pidfd_getfd(int fd, int target, unsigned flags) {
  return syscall(SYS_pidfd_getfd, fd, target, flags);
}

static volatile int got_sig, got_code, got_value, got_pid_ok;

static void handler(int sig, siginfo_t *si, void *ctx) {
  (void)ctx;
  got_sig = sig;
  got_code = si->si_code;
  got_value = si->si_value.sival_int;
  got_pid_ok = si->si_pid == getpid();
}

static int readable(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

int main(void) {
  SECTION("child");
  int ready[2];
  pipe(ready);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(ready[0]);
    write(ready[1], "r", 1);
    for (;;) pause();
  }
  char c;
  read(ready[0], &c, 1);
  int pfd = pidfd_open(pid, 0);
  FACT(pfd >= 0);
  SHOW(fcntl(pfd, F_GETFD));
  SHOW(fcntl(pfd, F_GETFL));
  SHOW(readable(pfd));
  SHOW(pidfd_send_signal(pfd, SIGTERM, NULL, 0x80));
  SHOW(pidfd_send_signal(pfd, 0, NULL, 0));
  SHOW(pidfd_send_signal(pfd, SIGTERM, NULL, 0));
  struct pollfd p = {pfd, POLLIN, 0};
  SHOW(poll(&p, 1, 5000));
  int st;
  SHOW(waitpid(pid, &st, 0) == pid);
  printf("signaled=%d sig=%s\n", WIFSIGNALED(st), signame(WTERMSIG(st)));
  SHOW(pidfd_send_signal(pfd, SIGTERM, NULL, 0));
  SHOW(close(pfd));

  SECTION("errors");
  SHOW(pidfd_open(-1, 0));
  SHOW(pidfd_open(getpid(), 1));
  SHOW(pidfd_open(0x3ffffff0, 0));
  int nb = pidfd_open(getpid(), PIDFD_NONBLOCK);
  FACT(nb >= 0);
  SHOW(fcntl(nb, F_GETFL));
  SHOW(close(nb));
  SHOW(pidfd_send_signal(99, SIGTERM, NULL, 0));
  SHOW(pidfd_send_signal(ready[0], SIGTERM, NULL, 0));
  SHOW(pidfd_getfd(ready[0], 0, 0));

  SECTION("ourselves");
  struct sigaction sa = {0};
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGRTMIN + 1, &sa, NULL);
  int self = pidfd_open(getpid(), 0);
  FACT(self >= 0);
  SHOW(pidfd_send_signal(self, SIGUSR1, NULL, 0));
  printf("handled %s code=%s pid_ok=%d\n", signame(got_sig), codename(got_sig, got_code),
         got_pid_ok);
  got_sig = 0;
  siginfo_t info;
  memset(&info, 0, sizeof info);
  info.si_signo = SIGRTMIN + 1;
  info.si_code = SI_QUEUE;
  info.si_pid = getpid();
  info.si_value.sival_int = 42;
  SHOW(pidfd_send_signal(self, SIGRTMIN + 1, &info, 0));
  printf("handled SIGRTMIN+%d code=%s value=%d\n", got_sig - SIGRTMIN,
         codename(got_sig, got_code), got_value);
  SHOW(pidfd_send_signal(self, SIGUSR1, &info, 0));
  SHOW(pidfd_send_signal(self, SIGUSR1, (siginfo_t *)8, 0));
  SHOW(pidfd_send_signal(self, 99, NULL, 0));
  SHOW(pidfd_send_signal(self, 0, NULL, 0));

  int dup = pidfd_getfd(self, ready[1], 0);
  FACT(dup >= 0 && dup != ready[1]);
  SHOW(fcntl(dup, F_GETFD));
  SHOW(write(dup, "via getfd", 9));
  char buf[16] = {0};
  SHOW(read(ready[0], buf, sizeof buf));
  printf("read: %s\n", buf);
  SHOW(pidfd_getfd(self, 99, 0));
  SHOW(pidfd_getfd(self, ready[1], 1));
  SHOW(close(self));
  return 0;
}
