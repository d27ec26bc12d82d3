// fcntl's signal-driven commands: F_NOTIFY (dnotify) with F_SETSIG, leases (F_SETLEASE,
// F_GETLEASE, their conflicts and the break signal another process's open sends),
// O_ASYNC with F_SETOWN_EX/F_GETOWN_EX.  The signals carry si_code, si_band and si_fd,
// which must name the guest's descriptor.
#include "check.h"
#include <sys/stat.h>
#include <sys/wait.h>

static volatile int got_sig, got_fd, got_code;
static volatile long got_band;

static void on_sig(int sig, siginfo_t *si, void *ctx) {
  (void)ctx;
  got_sig = sig;
  got_fd = si->si_fd;
  got_code = si->si_code;
  got_band = si->si_band;
}

static void handle(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sig;
  sa.sa_flags = SA_SIGINFO;
  sigaction(sig, &sa, NULL);
}

static void dnotify(void) {
  printf("-- F_NOTIFY\n");
  mkdir("d", 0700);
  int spare = open("/dev/null", O_RDONLY);    // guest and host numbering drift apart
  int fd = open(".", O_RDONLY | O_DIRECTORY);
  int sub = open("d", O_RDONLY | O_DIRECTORY);
  handle(SIGRTMIN + 1);
  SHOW(fcntl(fd, F_SETSIG, SIGRTMIN + 1));
  SHOW(fcntl(fd, F_NOTIFY, DN_ATTRIB | DN_MULTISHOT));
  SHOW(fcntl(sub, F_SETSIG, SIGRTMIN + 1));
  SHOW(fcntl(sub, F_NOTIFY, DN_ATTRIB));
  SHOW(fcntl(fd, F_NOTIFY, 0x1000000));
  int file = open("f", O_RDWR | O_CREAT, 0600);
  SHOW(fcntl(file, F_NOTIFY, DN_ATTRIB));       // a regular file: ENOTDIR
  got_sig = 0;
  SHOW(chmod("f", 0644));                       // in ".": the signal arrives at once
  FACT(got_sig == SIGRTMIN + 1);
  FACT(got_fd == fd);
  SHOW(got_code == POLL_MSG);
  printf("si_band = %#lx\n", (long)got_band);
  got_sig = 0;
  SHOW(chmod("d", 0755));                       // the subdirectory's own: also sub's
  FACT(got_sig == SIGRTMIN + 1);
  SHOW(fcntl(fd, F_NOTIFY, 0));                 // off
  got_sig = 0;
  SHOW(chmod("f", 0600));
  FACT(got_sig == 0);
  close(file);
  close(sub);
  close(fd);
  close(spare);
  signal(SIGRTMIN + 1, SIG_DFL);
}

static void leases(void) {
  printf("-- F_SETLEASE\n");
  int w = open("lease", O_RDWR | O_CREAT, 0600);
  SHOW(fcntl(w, F_SETLEASE, F_RDLCK));          // a writer is open: EAGAIN
  SHOW(fcntl(w, F_GETLEASE));
  close(w);
  int spare = open("/dev/null", O_RDONLY);
  int fd = open("lease", O_RDONLY);
  SHOW(fcntl(fd, F_SETLEASE, 42));
  SHOW(fcntl(fd, F_SETLEASE, F_RDLCK));
  SHOW(fcntl(fd, F_GETLEASE) == F_RDLCK);
  int fd2 = open("lease", O_RDONLY);
  SHOW(fcntl(fd2, F_SETLEASE, F_WRLCK));        // another open: EAGAIN
  close(fd2);
  SHOW(fcntl(fd, F_SETLEASE, F_UNLCK));
  SHOW(fcntl(fd, F_GETLEASE) == F_UNLCK);

  // The break: another process opens for writing; the holder gets its signal.
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGRTMIN + 2);
  sigprocmask(SIG_BLOCK, &set, &old);
  SHOW(fcntl(fd, F_SETSIG, SIGRTMIN + 2));
  SHOW(fcntl(fd, F_SETLEASE, F_RDLCK));
  fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    int o = open("lease", O_WRONLY);            // blocks until the lease is given up
    _exit(o >= 0 ? 0 : errno);
  }
  siginfo_t si;
  struct timespec ts = {10, 0};
  int sig = sigtimedwait(&set, &si, &ts);
  FACT(sig == SIGRTMIN + 2);
  FACT(si.si_fd == fd);
  SHOW(si.si_code == POLL_MSG);
  SHOW(fcntl(fd, F_GETLEASE) == F_UNLCK);       // the lease being broken to
  SHOW(fcntl(fd, F_SETLEASE, F_UNLCK));
  int status;
  waitpid(child, &status, 0);
  printf("child open: %s\n", !WIFEXITED(status) ? "killed"
         : WEXITSTATUS(status) ? errname(WEXITSTATUS(status)) : "ok");
  sigprocmask(SIG_SETMASK, &old, NULL);
  close(fd);
  close(spare);
}

static void owner_ex(void) {
  printf("-- O_ASYNC, F_SETOWN_EX\n");
  SHOW(setpgid(0, 0));          // F_OWNER_PGRP signals the group: ours alone
  int p[2];
  pipe(p);
  struct f_owner_ex own;
  SHOW(fcntl(p[0], F_GETOWN_EX, &own));
  SHOW(own.type);
  SHOW(own.pid);
  SHOW(fcntl(p[0], F_GETOWN_EX, (void *)8));
  own.type = 7;
  own.pid = getpid();
  SHOW(fcntl(p[0], F_SETOWN_EX, &own));
  SHOW(fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK));
  SHOW(fcntl(p[0], F_SETSIG, SIGUSR1));
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGIO);
  sigprocmask(SIG_BLOCK, &set, &old);
  int types[] = {F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP};
  for (int i = 0; i < 3; i++) {
    own.type = types[i];
    own.pid = types[i] == F_OWNER_TID ? (pid_t)syscall(SYS_gettid)
              : types[i] == F_OWNER_PID ? getpid() : getpgrp();
    SHOW(fcntl(p[0], F_SETOWN_EX, &own));
    struct f_owner_ex back;
    SHOW(fcntl(p[0], F_GETOWN_EX, &back));
    SHOW(back.type == types[i]);
    FACT(back.pid == own.pid);
    FACT(fcntl(p[0], F_GETOWN) == (types[i] == F_OWNER_PGRP ? -own.pid : own.pid));
    SHOW(write(p[1], "x", 1));
    siginfo_t si;
    struct timespec ts = {5, 0};
    int sig = sigtimedwait(&set, &si, &ts);
    SHOW(sig == SIGUSR1);
    FACT(si.si_fd == p[0]);
    SHOW(si.si_code == POLL_IN);
    printf("si_band = %#lx\n", (long)si.si_band);
    char c;
    SHOW(read(p[0], &c, 1));
  }
  SHOW(fcntl(p[0], F_SETOWN, getpid()));
  SHOW(fcntl(p[0], F_GETOWN_EX, &own));
  SHOW(own.type == F_OWNER_PID);
  sigprocmask(SIG_SETMASK, &old, NULL);
  close(p[0]);
  close(p[1]);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  dnotify();
  leases();
  owner_ex();
  return 0;
}
