// proc_groups: process groups (setpgid, getpgid, kill(-pgid), killpg, waitpid(-pgid)),
// sessions (setsid, getsid), getppid after the parent dies (reparenting).
#include "check.h"
#include <sys/wait.h>

static void test_groups(void) {
  SECTION("process groups");
  pid_t me = getpid();
  printf("getpgid(0) == getpgrp(): %s\n", getpgid(0) == getpgrp() ? "yes" : "no");
  SHOW(getpgid(999999999));
  SHOW(setpgid(0, 0) == 0 && getpgrp() == me);
  SHOW(setpgid(-1, 0));
  SHOW(setpgid(999999999, 0));

  /* three children in a new group led by the first one */
  int ready[2];
  pipe(ready);
  pid_t kids[3];
  for (int i = 0; i < 3; i++) {
    kids[i] = fork();
    if (kids[i] == 0) {
      setpgid(0, i == 0 ? 0 : kids[0]);
      close(ready[0]);
      write(ready[1], "r", 1);
      for (;;) pause();
    }
    setpgid(kids[i], kids[0]); /* both sides, as shells do (the race is harmless) */
  }
  close(ready[1]);
  char c;
  for (int i = 0; i < 3; i++) read(ready[0], &c, 1);
  close(ready[0]);
  for (int i = 0; i < 3; i++) printf("child %d in the new group: %s\n", i, getpgid(kids[i]) == kids[0] ? "yes" : "no");
  printf("we are not in it: %s\n", getpgrp() != kids[0] ? "yes" : "no");
  int st;
  SHOW(waitpid(-kids[0], &st, WNOHANG));
  SHOW(kill(-kids[0], 0));
  SHOW(kill(-kids[0], SIGTERM));
  int killed = 0;
  for (int i = 0; i < 3; i++) {
    pid_t r = waitpid(-kids[0], &st, 0);
    if (r > 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) killed++;
  }
  printf("killed by SIGTERM through the group: %d\n", killed);
  SHOW(waitpid(-kids[0], &st, 0));
  SHOW(kill(-kids[0], 0));

  /* a child cannot move into a group of another session, nor change it after exec */
  pid_t pid = fork();
  if (pid == 0) {
    SHOW(setpgid(0, 1));
    _exit(0);
  }
  waitpid(pid, NULL, 0);

  /* killpg */
  pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    for (;;) pause();
  }
  setpgid(pid, pid);
  SHOW(killpg(pid, SIGKILL));
  waitpid(pid, &st, 0);
  printf("killpg: %s\n", WIFSIGNALED(st) ? signame(WTERMSIG(st)) : "exited");
}

static void test_sessions(void) {
  SECTION("sessions");
  pid_t me = getpid();
  printf("getsid(0) == getsid(me): %s\n", getsid(0) == getsid(me) ? "yes" : "no");
  SHOW(getsid(999999999));
  /* we are a group leader (setpgid above): setsid fails */
  SHOW(setsid());
  int p[2];
  pipe(p);
  pid_t pid = fork();
  if (pid == 0) {
    pid_t old = getsid(0);
    pid_t s = setsid();
    char line[256];
    int len = snprintf(line, sizeof line,
                       "child: setsid is its pid: %s, getsid changed: %s, pgid is its pid: %s\n",
                       s == getpid() ? "yes" : "no", getsid(0) != old ? "yes" : "no",
                       getpgrp() == getpid() ? "yes" : "no");
    len += snprintf(line + len, sizeof line - len, "child: setsid again: %s\n",
                    setsid() == -1 ? errname(errno) : "ok");
    len += snprintf(line + len, sizeof line - len, "child: setpgid into the old group: %s\n",
                    setpgid(0, old) == -1 ? errname(errno) : "ok");
    write(p[1], line, len);
    _exit(0);
  }
  close(p[1]);
  char buf[512] = {0};
  int got = 0, n;
  while ((n = read(p[0], buf + got, sizeof buf - 1 - got)) > 0) got += n;
  close(p[0]);
  printf("%s", buf);
  waitpid(pid, NULL, 0);
  /* the session of a child that setsid'd, seen from here */
  pipe(p);
  pid = fork();
  if (pid == 0) {
    setsid();
    close(p[0]);
    close(p[1]);
    for (;;) pause();
  }
  close(p[1]);
  read(p[0], buf, 1);
  close(p[0]);
  printf("getsid(child) is the child: %s\n", getsid(pid) == pid ? "yes" : "no");
  printf("setpgid on a child in another session: %s\n",
         setpgid(pid, getpgrp()) == -1 ? errname(errno) : "ok");
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

static void test_orphan(void) {
  SECTION("getppid after the parent dies");
  int p[2], go[2];
  pipe(p);
  pipe(go);
  pid_t middle = fork();
  if (middle == 0) {
    pid_t me = getpid();
    int started[2];
    pipe(started);
    pid_t grandchild = fork();
    if (grandchild == 0) {
      close(go[1]);
      close(started[0]);
      pid_t before = getppid();
      close(started[1]); /* the middle process waits for this before it exits */
      char c;
      read(go[0], &c, 1); /* EOF: the middle process is gone */
      int changed = 0;
      for (int i = 0; i < 300 && !changed; i++) {
        changed = getppid() != before;
        if (!changed) usleep(10000);
      }
      char line[128];
      int len = snprintf(line, sizeof line, "grandchild: parent was the middle one: %s, changed: %s\n",
                         before == me ? "yes" : "no", changed ? "yes" : "no");
      write(p[1], line, len);
      _exit(0);
    }
    close(started[1]);
    char c;
    read(started[0], &c, 1);
    _exit(0);
  }
  close(go[0]);
  close(p[1]);
  int st;
  waitpid(middle, &st, 0);
  close(go[1]);
  char buf[256] = {0};
  int got = 0, n;
  while ((n = read(p[0], buf + got, sizeof buf - 1 - got)) > 0) got += n;
  printf("middle: exited %d\n%s", WEXITSTATUS(st), buf);
  printf("getppid() here is not 0: %s\n", getppid() != 0 ? "yes" : "no");
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  test_groups();
  test_sessions();
  test_orphan();
  return 0;
}
