/* Differential-test driver for zstd (crates/cli/tests/differential.rs):
 * the same "step" protocol as zlib_driver.c. A round depends only on its
 * number and the library's code; results are hashed with FNV-1a. */
#include <stdio.h>
#include <string.h>
#include "zstd.h"

#define CAP (128 * 1024)
static unsigned char data[CAP], packed[2 * CAP], unpacked[CAP], bad[2 * CAP];
static unsigned long long rng;

static unsigned rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 16);
}

static unsigned long fnv(const unsigned char *p, size_t n) {
    unsigned long h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h & 0xffffffffu;
}

static size_t make_data(unsigned round) {
    static const char *words[] = {"live", "patch", "relive", "zstd", "entropy", "huffman", "the", "of",
                                  "and", "process", "symbol", "function", "\n", ", ", "0123456789"};
    rng = 0x9e3779b97f4a7c15ull ^ (round * 0x100000001b3ull + 1);
    size_t n = 4096 + (size_t)(rnd() % (CAP - 8192)), i = 0;
    while (i < n) {
        unsigned kind = rnd() % 16;
        if (kind < 11) {
            const char *w = words[rnd() % (sizeof words / sizeof *words)];
            while (*w && i < n) data[i++] = (unsigned char)*w++;
            if (i < n) data[i++] = ' ';
        } else if (kind < 13) {
            unsigned len = 3 + rnd() % 300, c = rnd() & 0xff;
            while (len-- && i < n) data[i++] = (unsigned char)c;
        } else if (kind < 15 && i > 300) {
            unsigned dist = 1 + rnd() % (i < 60000 ? (unsigned)i : 60000), len = 3 + rnd() % 500;
            while (len-- && i < n) { data[i] = data[i - dist]; i++; }
        } else {
            unsigned len = 1 + rnd() % 64;
            while (len-- && i < n) data[i++] = (unsigned char)rnd();
        }
    }
    return n;
}

static const char *name(size_t rc) { return ZSTD_isError(rc) ? ZSTD_getErrorName(rc) : "ok"; }

static void round_(unsigned round) {
    /* Buffers start each round empty: an edit that makes a call fail
     * (no output) must not leave the previous round's bytes to be read. */
    memset(packed, 0, sizeof packed);
    memset(unpacked, 0, sizeof unpacked);
    memset(bad, 0, sizeof bad);
    size_t n = make_data(round);
    printf("round %u n=%lu", round, (unsigned long)n);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_DCtx *d = ZSTD_createDCtx();
    size_t last = 0;
    for (int strategy = ZSTD_fast; strategy <= ZSTD_btultra2; strategy++) {
        ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
        ZSTD_CCtx_setParameter(c, ZSTD_c_strategy, strategy);
        ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 17);
        ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, strategy & 1);
        size_t size = ZSTD_compress2(c, packed, sizeof packed, data, n);
        if (ZSTD_isError(size)) { printf(" %d:%s", strategy, name(size)); continue; }
        size_t back = ZSTD_decompressDCtx(d, unpacked, sizeof unpacked, packed, size);
        int ok = back == n && memcmp(unpacked, data, n) == 0;
        printf(" %d:%lu/%lx/%s", strategy, (unsigned long)size, fnv(packed, size), ok ? "ok" : name(back));
        last = size;
    }
    for (int level = -3; level <= 19; level += 11) {
        size_t size = ZSTD_compress(packed, sizeof packed, data, n, level);
        printf(" L%d:%lu/%lx", level, (unsigned long)size, ZSTD_isError(size) ? 0 : fnv(packed, size));
        last = ZSTD_isError(size) ? last : size;
    }
    printf(" fcs=%llu bound=%lu", (unsigned long long)ZSTD_getFrameContentSize(packed, last),
           (unsigned long)ZSTD_compressBound(n));
    /* Damaged frames: each names its error. */
    memcpy(bad, packed, last);
    bad[0] ^= 1;
    printf(" [%s]", name(ZSTD_decompressDCtx(d, unpacked, sizeof unpacked, bad, last)));
    memcpy(bad, packed, last);
    printf(" [%s]", name(ZSTD_decompressDCtx(d, unpacked, sizeof unpacked, bad, last - 1 - round % 5)));
    bad[last / 2] ^= 0x5a;
    printf(" [%s]", name(ZSTD_decompressDCtx(d, unpacked, sizeof unpacked, bad, last)));
    printf(" [%s]", name(ZSTD_decompressDCtx(d, unpacked, 100, packed, last)));
    printf(" err=");
    static const int codes[] = {1, 4, 10, 12, 14, 16, 20, 22, 24, 30, 32, 34, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 62, 64, 66, 70, 72, 74, 100, 119};
    for (unsigned i = 0; i < sizeof codes / sizeof *codes; i++) printf("%s|", ZSTD_getErrorName((size_t)-codes[i]));
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
    printf(" v=%s/%u\n", ZSTD_versionString(), ZSTD_versionNumber());
}

int main(void) {
    char line[64];
    unsigned round = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ready\n");
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "step", 4) == 0) round_(round++);
        else if (strncmp(line, "quit", 4) == 0) break;
    }
    return 0;
}
