/* I/O throughput: copy stdin to stdout in 64 KiB read()/write() calls until
 * EOF.  The benchmark feeds it 100 MiB from a native `head -c 100M /dev/zero`
 * and sends its stdout to /dev/null. */
#include <errno.h>
#include <unistd.h>

static char buf[1 << 16];

int main(void) {
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(1, buf + off, n - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return 1;
            }
            off += w;
        }
    }
}
