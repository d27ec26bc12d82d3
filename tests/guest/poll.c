// poll: pipes, poll/ppoll/select/pselect6, eventfd, timerfd and epoll (level and edge triggered).
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/timerfd.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void show_revents(const char *label, short revents) {
  printf("  %s revents:%s%s%s%s%s\n", label, revents & POLLIN ? " POLLIN" : "",
         revents & POLLOUT ? " POLLOUT" : "", revents & POLLHUP ? " POLLHUP" : "",
         revents & POLLERR ? " POLLERR" : "", revents & POLLNVAL ? " POLLNVAL" : "");
}

static void test_pipes(void) {
  SECTION("pipe2");
  int p[2];
  SHOW(pipe2(p, O_CLOEXEC | O_NONBLOCK));
  printf("  fds %d %d\n", p[0], p[1]);
  SHOW(fcntl(p[0], F_GETFD));
  SHOW(!!(fcntl(p[1], F_GETFL) & O_NONBLOCK));
  char buf[128];
  SHOW(read(p[0], buf, sizeof buf));
  SHOW(write(p[1], "hello", 5));
  int avail = 0;
  SHOW(ioctl(p[0], FIONREAD, &avail));
  printf("  FIONREAD = %d\n", avail);
  SHOW(read(p[0], buf, 3));
  SHOW(read(p[0], buf, sizeof buf));
  SHOW(pipe2(p, 0x12345));
  SHOW(close(p[0]));
  SHOW(close(p[1]));

  /* fill a non-blocking pipe until EAGAIN; the default capacity is 64 KiB */
  pipe2(p, O_NONBLOCK);
  long total = 0, n;
  static char chunk[4096];
  while ((n = write(p[1], chunk, sizeof chunk)) > 0) total += n;
  printf("  filled %ld bytes, then %s\n", total, errname(errno));
  SHOW(fcntl(p[1], F_GETPIPE_SZ));
  close(p[0]);
  signal(SIGPIPE, SIG_IGN);
  SHOW(write(p[1], "x", 1)); /* no reader */
  close(p[1]);

  pipe(p);
  close(p[1]);
  SHOW(read(p[0], buf, sizeof buf)); /* no writer: EOF */
  close(p[0]);
  SHOW(pipe((int *)8));
}

static void test_poll(void) {
  SECTION("poll/ppoll");
  int p[2];
  pipe(p);
  struct pollfd fds[4] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}, {-1, POLLIN, 0}, {99, POLLIN, 0}};
  SHOW(poll(fds, 2, 0));
  show_revents("read end", fds[0].revents);
  show_revents("write end", fds[1].revents);
  double start = now();
  SHOW(poll(fds, 1, 10));
  FACT(now() - start >= 0.010);
  write(p[1], "x", 1);
  SHOW(poll(fds, 4, 0));
  show_revents("read end", fds[0].revents);
  show_revents("negative fd", fds[2].revents);
  show_revents("bad fd", fds[3].revents);
  close(p[1]);
  char c;
  read(p[0], &c, 1);
  SHOW(poll(fds, 1, 0));
  show_revents("read end, writer closed", fds[0].revents);
  SHOW(poll(NULL, 0, 10));
  SHOW(poll((struct pollfd *)8, 1, 0));

  struct timespec ts = {0, 10000000};
  sigset_t mask;
  sigemptyset(&mask);
  fds[0].events = POLLIN;
  SHOW(ppoll(fds, 1, &ts, &mask));
  show_revents("ppoll", fds[0].revents);
  int q[2];
  pipe(q);
  struct pollfd empty = {q[0], POLLIN, 0};
  start = now();
  SHOW(ppoll(&empty, 1, &ts, NULL));
  FACT(now() - start >= 0.010);
  struct timespec bad = {0, -1};
  SHOW(ppoll(&empty, 1, &bad, NULL));
  close(p[0]);
  close(q[0]);
  close(q[1]);
}

static void test_select(void) {
  SECTION("select/pselect6");
  int p[2];
  pipe(p);
  fd_set rd, wr;
  FD_ZERO(&rd);
  FD_ZERO(&wr);
  FD_SET(p[0], &rd);
  FD_SET(p[1], &wr);
  struct timeval zero = {0, 0};
  SHOW(select(p[1] + 1, &rd, &wr, NULL, &zero));
  printf("  read ready %d write ready %d\n", FD_ISSET(p[0], &rd), FD_ISSET(p[1], &wr));
  FD_SET(p[0], &rd);
  struct timeval ten_ms = {0, 10000};
  double start = now();
  SHOW(select(p[0] + 1, &rd, NULL, NULL, &ten_ms));
  FACT(now() - start >= 0.010);
  write(p[1], "x", 1);
  FD_SET(p[0], &rd);
  zero.tv_usec = 0;
  SHOW(select(p[0] + 1, &rd, NULL, NULL, &zero));
  printf("  read ready %d\n", FD_ISSET(p[0], &rd));
  FD_ZERO(&rd);
  /* a closed fd below 64: past the fd table's size (which depends on what the parent
     had open) select would ignore it instead of failing */
  FD_SET(40, &rd);
  zero.tv_usec = 0;
  SHOW(select(41, &rd, NULL, NULL, &zero));
  SHOW(select(-1, NULL, NULL, NULL, &zero));
  struct timeval bad = {0, -5};
  SHOW(select(0, NULL, NULL, NULL, &bad));

  struct timespec ts = {0, 10000000};
  sigset_t mask;
  sigemptyset(&mask);
  FD_ZERO(&rd);
  FD_SET(p[0], &rd);
  SHOW(pselect(p[0] + 1, &rd, NULL, NULL, &ts, &mask));
  char c;
  read(p[0], &c, 1);
  FD_SET(p[0], &rd);
  start = now();
  SHOW(pselect(p[0] + 1, &rd, NULL, NULL, &ts, NULL));
  FACT(now() - start >= 0.010);
  close(p[0]);
  close(p[1]);
}

static void test_eventfd(void) {
  SECTION("eventfd2");
  int fd = SHOW(eventfd(3, EFD_NONBLOCK | EFD_CLOEXEC));
  SHOW(fcntl(fd, F_GETFD));
  uint64_t v = 5;
  SHOW(write(fd, &v, 8));
  SHOW(read(fd, &v, 8));
  printf("  value = %lu\n", (unsigned long)v);
  SHOW(read(fd, &v, 8));
  SHOW(read(fd, &v, 4));
  v = UINT64_MAX;
  SHOW(write(fd, &v, 8));
  v = UINT64_MAX - 1;
  SHOW(write(fd, &v, 8));
  SHOW(write(fd, &v, 8)); /* would overflow */
  struct pollfd pfd = {fd, POLLIN | POLLOUT, 0};
  SHOW(poll(&pfd, 1, 0));
  show_revents("full counter", pfd.revents);
  SHOW(read(fd, &v, 8));
  close(fd);

  fd = SHOW(eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK));
  SHOW(read(fd, &v, 8));
  printf("  value = %lu\n", (unsigned long)v);
  SHOW(read(fd, &v, 8));
  printf("  value = %lu\n", (unsigned long)v);
  SHOW(read(fd, &v, 8));
  close(fd);
  SHOW(eventfd(0, 0x12345));
}

static void test_timerfd(void) {
  SECTION("timerfd");
  int fd = SHOW(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  uint64_t expirations;
  SHOW(read(fd, &expirations, 8));
  struct itimerspec spec = {{0, 10000000}, {0, 10000000}}, cur;
  SHOW(timerfd_settime(fd, 0, &spec, NULL));
  SHOW(timerfd_gettime(fd, &cur));
  printf("  interval = %ld.%09ld\n", (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec);
  FACT(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 10000000);
  struct timespec wait = {0, 35000000};
  nanosleep(&wait, NULL);
  SHOW(read(fd, &expirations, 8));
  FACT(expirations >= 3);
  SHOW(read(fd, &expirations, 4));
  struct pollfd pfd = {fd, POLLIN, 0};
  SHOW(poll(&pfd, 1, 100));
  SHOW(read(fd, &expirations, 8));
  FACT(expirations >= 1);
  struct itimerspec off = {{0, 0}, {0, 0}}, old;
  SHOW(timerfd_settime(fd, 0, &off, &old));
  printf("  old interval = %ld.%09ld\n", (long)old.it_interval.tv_sec, old.it_interval.tv_nsec);
  SHOW(timerfd_gettime(fd, &cur));
  FACT(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
  close(fd);

  /* an absolute deadline in the past fires at once */
  fd = timerfd_create(CLOCK_REALTIME, 0);
  struct itimerspec past = {{0, 0}, {1, 0}};
  SHOW(timerfd_settime(fd, TFD_TIMER_ABSTIME, &past, NULL));
  SHOW(read(fd, &expirations, 8));
  printf("  expirations = %lu\n", (unsigned long)expirations);
  struct itimerspec bad = {{0, 0}, {0, 1000000000}};
  SHOW(timerfd_settime(fd, 0, &bad, NULL));
  SHOW(timerfd_settime(fd, 0x100, &spec, NULL));
  close(fd);
  SHOW(timerfd_create(12345, 0));
  SHOW(timerfd_create(CLOCK_MONOTONIC, 0x1));
  SHOW(timerfd_gettime(0, &cur));
}

static void show_events(int n, struct epoll_event *ev) {
  for (int i = 0; i < n; i++)
    printf("  event tag=%lu%s%s%s\n", (unsigned long)ev[i].data.u64,
           ev[i].events & EPOLLIN ? " EPOLLIN" : "", ev[i].events & EPOLLOUT ? " EPOLLOUT" : "",
           ev[i].events & EPOLLHUP ? " EPOLLHUP" : "");
}

static void test_epoll(void) {
  SECTION("epoll");
  int ep = SHOW(epoll_create1(EPOLL_CLOEXEC));
  SHOW(fcntl(ep, F_GETFD));
  SHOW(epoll_create1(0x1));
  SHOW(syscall(SYS_epoll_create, 0)); /* musl's wrapper ignores the size */
  int p[2];
  pipe(p);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 100}, out[8];
  SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
  SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
  SHOW(epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev));
  SHOW(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], &ev));
  SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev));
  SHOW(epoll_ctl(ep, 99, p[0], &ev));
  SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, 77, &ev));
  SHOW(epoll_ctl(p[0], EPOLL_CTL_ADD, p[1], &ev));
  int file = open("regular", O_CREAT | O_RDWR, 0644);
  SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, file, &ev));
  close(file);

  SHOW(epoll_wait(ep, out, 8, 0));
  double start = now();
  SHOW(epoll_wait(ep, out, 8, 10));
  FACT(now() - start >= 0.010);
  SHOW(epoll_wait(ep, out, 0, 0));
  SHOW(epoll_wait(p[0], out, 8, 0));

  write(p[1], "ab", 2);
  int n = SHOW(epoll_wait(ep, out, 8, 0));
  show_events(n, out);
  n = SHOW(epoll_wait(ep, out, 8, 0)); /* level-triggered: still readable */
  show_events(n, out);

  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = 200;
  SHOW(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
  n = SHOW(epoll_wait(ep, out, 8, 0));
  show_events(n, out);
  SHOW(epoll_wait(ep, out, 8, 0)); /* edge-triggered: no new edge */
  write(p[1], "c", 1);
  n = SHOW(epoll_wait(ep, out, 8, 0));
  show_events(n, out);

  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = 300;
  SHOW(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
  n = SHOW(epoll_wait(ep, out, 8, 0));
  show_events(n, out);
  SHOW(epoll_wait(ep, out, 8, 0)); /* disarmed */

  int efd = eventfd(0, EFD_NONBLOCK);
  struct epoll_event eev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = 400};
  SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &eev));
  n = SHOW(epoll_wait(ep, out, 8, 0));
  show_events(n, out);
  uint64_t one = 1;
  write(efd, &one, 8);
  sigset_t mask;
  sigemptyset(&mask);
  n = SHOW(epoll_pwait(ep, out, 8, 10, &mask));
  show_events(n, out);
  SHOW(epoll_ctl(ep, EPOLL_CTL_DEL, efd, NULL));
  SHOW(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
  SHOW(epoll_wait(ep, out, 8, 0));

  /* a closed write end reports EPOLLHUP */
  ev.events = EPOLLIN;
  ev.data.u64 = 500;
  epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
  close(p[1]);
  char buf[8];
  read(p[0], buf, sizeof buf);
  n = SHOW(epoll_wait(ep, out, 8, 0));
  show_events(n, out);
  close(p[0]);
  close(efd);
  close(ep);
}

int main(void) {
  test_pipes();
  test_poll();
  test_select();
  test_eventfd();
  test_timerfd();
  test_epoll();
  return 0;
}
