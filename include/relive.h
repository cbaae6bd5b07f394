/* relive.h: reload hooks for programs that relive live-patches.
 *
 *   #include "relive.h"
 *   static void reset_caches(void) { cache_valid = 0; }
 *   RELIVE_AFTER_PATCH(reset_caches);
 *
 * RELIVE_AFTER_PATCH(fn) asks relive to call `void fn(void)` in the program
 * after every patch it applies (relive patch, and every reload of relive
 * run / relive watch), once the new code is what runs; RELIVE_BEFORE_PATCH(fn)
 * before the patch's entries are redirected. A hook's address goes into an
 * ELF section (relive_after_patch / relive_before_patch) that relive reads
 * from the running program; nothing is linked in and nothing runs without
 * relive.
 *
 * What a hook may do: relive calls it on the program's main thread,
 * interrupting that thread wherever it was (as a signal handler would),
 * while the other threads run on. Set flags, reset state, re-register
 * callbacks, write a line. Do not wait for a lock another thread, or the
 * interrupted code, may hold (malloc and stdio are fine only if the main
 * thread cannot be inside them, e.g. it sleeps or waits in a system call
 * between iterations). A hook that crashes or runs longer than 5 seconds is
 * abandoned where it is and reported; the patch stands. Hooks run around
 * patches, not around reverts.
 */
#ifndef RELIVE_H
#define RELIVE_H

#define RELIVE_HOOK_CAT_(a, b) a##b
#define RELIVE_HOOK_CAT(a, b) RELIVE_HOOK_CAT_(a, b)

#define RELIVE_HOOK_(where, fn)                                                \
    static void (*RELIVE_HOOK_CAT(relive_hook_, __LINE__))(void)             \
        __attribute__((section(where), used, aligned(8))) = (fn)

/* Calls fn() in the program after every patch relive applies. */
#define RELIVE_AFTER_PATCH(fn) RELIVE_HOOK_("relive_after_patch", fn)
/* Calls fn() in the program before every patch relive applies. */
#define RELIVE_BEFORE_PATCH(fn) RELIVE_HOOK_("relive_before_patch", fn)

#endif
