/* Fast producer for scripts/bench-monitor: writes the same bytes as
 * `yes LINE | head -c SIZE`, in 1 MiB writes, so the monitor under test is
 * the bottleneck and not a two-process pipeline. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s LINE SIZE\n", argv[0]);
        return 2;
    }
    size_t len = strlen(argv[1]) + 1, cap = 1 << 20;
    unsigned long long left = strtoull(argv[2], NULL, 10);
    size_t lines = cap / len;
    if (lines == 0)
        lines = 1;
    char *buf = malloc(lines * len);
    if (!buf)
        return 1;
    for (size_t i = 0; i < lines; i++) {
        memcpy(buf + i * len, argv[1], len - 1);
        buf[i * len + len - 1] = '\n';
    }
    size_t full = lines * len;
    while (left > 0) {
        size_t n = left < full ? (size_t)left : full;
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(1, buf + off, n - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return 1;
            }
            off += (size_t)w;
        }
        left -= n;
    }
    return 0;
}
