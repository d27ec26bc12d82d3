// inotify: instances and their flags, watches on a directory and on a file, the events of
// create/write/rename/chmod/unlink with names and move cookies, IN_IGNORED, error cases.
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>

static const char *mask_names(uint32_t m) {
  static char out[256];
  static const struct {
    uint32_t bit;
    const char *name;
  } bits[] = {{IN_ACCESS, "ACCESS"},       {IN_MODIFY, "MODIFY"},
              {IN_ATTRIB, "ATTRIB"},       {IN_CLOSE_WRITE, "CLOSE_WRITE"},
              {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"},
              {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},
              {IN_CREATE, "CREATE"},       {IN_DELETE, "DELETE"},
              {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
              {IN_IGNORED, "IGNORED"},     {IN_ISDIR, "ISDIR"}};
  out[0] = 0;
  for (unsigned i = 0; i < sizeof bits / sizeof bits[0]; i++)
    if (m & bits[i].bit) {
      if (out[0]) strcat(out, "|");
      strcat(out, bits[i].name);
    }
  return out;
}

static void drain(int fd, int wd_dir) {
  char buf[4096] __attribute__((aligned(8)));
  long n = read(fd, buf, sizeof buf);
  if (n < 0) {
    printf("read = -1 %s\n", errname(errno));
    return;
  }
  uint32_t cookie = 0;
  for (char *p = buf; p < buf + n;) {
    struct inotify_event *e = (struct inotify_event *)p;
    const char *cookie_note = "";
    if (e->mask & IN_MOVED_FROM) cookie = e->cookie;
    if (e->mask & IN_MOVED_TO) cookie_note = e->cookie == cookie ? " (same cookie)" : " (other cookie)";
    printf("  wd=%s %s \"%s\"%s\n", e->wd == wd_dir ? "dir" : "other", mask_names(e->mask),
           e->len ? e->name : "", cookie_note);
    p += sizeof *e + e->len;
  }
}

int main(void) {
  SECTION("instances");
  int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  FACT(in >= 0);
  SHOW(fcntl(in, F_GETFD));
  SHOW(fcntl(in, F_GETFL));
  SHOW(inotify_init1(0x10));
  int old = syscall(SYS_inotify_init);
  FACT(old >= 0);
  SHOW(fcntl(old, F_GETFD));
  SHOW(fcntl(old, F_GETFL));

  SECTION("directory watch");
  SHOW(mkdir("watched", 0755));
  int wd = SHOW(inotify_add_watch(in, "watched", IN_CREATE | IN_DELETE | IN_MODIFY |
                                  IN_CLOSE_WRITE | IN_MOVE | IN_ATTRIB));
  SHOW(inotify_add_watch(in, "watched", IN_MODIFY | IN_MASK_ADD));   /* same inode: same wd */
  char buf[64];
  SHOW(read(in, buf, sizeof buf));
  struct pollfd p = {in, POLLIN, 0};
  SHOW(poll(&p, 1, 0));
  int f = open("watched/a", O_CREAT | O_WRONLY, 0644);
  write(f, "x", 1);
  close(f);
  rename("watched/a", "watched/b");
  chmod("watched/b", 0600);
  SHOW(poll(&p, 1, 0));
  SHOW(read(in, buf, 8));
  drain(in, wd);

  SECTION("file watch");
  int fwd = SHOW(inotify_add_watch(in, "watched/b", IN_ALL_EVENTS));
  FACT(fwd != wd);
  SHOW(inotify_add_watch(in, "watched/b", IN_MODIFY | IN_MASK_CREATE));
  SHOW(inotify_add_watch(in, "watched/b", IN_MODIFY | IN_MASK_CREATE | IN_MASK_ADD));
  SHOW(inotify_add_watch(in, "watched/b", IN_ONLYDIR | IN_MODIFY));
  SHOW(symlink("b", "watched/link"));
  drain(in, wd);
  int lwd = SHOW(inotify_add_watch(in, "watched/link", IN_ATTRIB | IN_DONT_FOLLOW));
  FACT(lwd != fwd);
  SHOW(inotify_add_watch(in, "watched/link", IN_ATTRIB) == fwd);
  SHOW(unlink("watched/b"));
  drain(in, wd);
  SHOW(inotify_rm_watch(in, lwd));
  drain(in, wd);
  SHOW(inotify_rm_watch(in, lwd));
  SHOW(inotify_rm_watch(in, 12345));
  SHOW(unlink("watched/link"));
  drain(in, wd);

  SECTION("errors");
  SHOW(inotify_add_watch(in, "missing", IN_MODIFY));
  SHOW(inotify_add_watch(in, "watched", 0));
  SHOW(inotify_add_watch(in, "", IN_MODIFY));
  SHOW(inotify_add_watch(in, (char *)8, IN_MODIFY));
  SHOW(inotify_add_watch(99, "watched", IN_MODIFY));
  SHOW(inotify_add_watch(1, "watched", IN_MODIFY));
  SHOW(inotify_add_watch(1, "missing", IN_MODIFY));
  SHOW(inotify_rm_watch(1, 1));
  SHOW(inotify_rm_watch(99, 1));

  SECTION("removal");
  SHOW(rmdir("watched"));
  drain(in, wd);
  SHOW(read(in, buf, sizeof buf));
  SHOW(close(in));
  SHOW(close(old));
  return 0;
}
