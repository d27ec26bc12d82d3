// lock_threads: record locks waited for by one thread while others run: F_OFD_SETLKW
// (and F_SETLKW against another process) blocks its thread only, the lock's holder
// keeps running and releases it, and the waiter then gets it.
// cflags: -lpthread
#include "check.h"
#include <pthread.h>
#include <sys/wait.h>

static char path[64];
static volatile int waiter_has_lock;

static int ofd_lock(int fd, int cmd, short type) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  return fcntl(fd, cmd, &fl);
}

static void *waiter(void *arg) {
  (void)arg;
  int fd = open(path, O_RDWR);
  int r = ofd_lock(fd, F_OFD_SETLKW, F_WRLCK);    /* blocks until main unlocks */
  waiter_has_lock = 1;
  printf("waiter: F_OFD_SETLKW = %d\n", r);
  fflush(stdout);
  ofd_lock(fd, F_OFD_SETLK, F_UNLCK);
  close(fd);
  return NULL;
}

static void test_ofd_threads(void) {
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  SHOW(ofd_lock(fd, F_OFD_SETLK, F_WRLCK));
  pthread_t th[3];
  for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, waiter, NULL);
  usleep(100000);           /* the waiters block in F_OFD_SETLKW meanwhile */
  FACT(waiter_has_lock == 0);
  printf("main: still running while the waiters wait\n");
  fflush(stdout);
  int unlocked = ofd_lock(fd, F_OFD_SETLK, F_UNLCK);   /* printed after the waiters' lines */
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  SHOW(unlocked);
  FACT(waiter_has_lock == 1);
  close(fd);
}

static volatile int stop;

static void *spinner(void *arg) {
  volatile long *n = arg;
  while (!stop) (*n)++;
  return NULL;
}

static void test_posix_lock_other_process(void) {
  int fd = open(path, O_RDWR);
  int go[2];
  pipe(go);
  pid_t pid = fork();
  if (pid == 0) {
    ofd_lock(fd, F_SETLK, F_WRLCK);
    write(go[1], "x", 1);
    usleep(100000);
    _exit(0);                 /* releases the lock */
  }
  char c;
  read(go[0], &c, 1);
  volatile long n = 0;
  pthread_t th;
  pthread_create(&th, NULL, spinner, (void *)&n);    /* a second thread in the engine */
  SHOW(ofd_lock(fd, F_SETLK, F_WRLCK));
  SHOW(ofd_lock(fd, F_SETLKW, F_WRLCK));               /* waits for the child's exit */
  stop = 1;
  pthread_join(th, NULL);
  int status;
  waitpid(pid, &status, 0);
  SHOW(WEXITSTATUS(status));
  close(fd);
}

int main(void) {
  snprintf(path, sizeof path, "/tmp/lock_threads.%d", (int)getpid());
  test_ofd_threads();
  test_posix_lock_other_process();
  unlink(path);
  return 0;
}
