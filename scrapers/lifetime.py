"""The crawl subprocess lives no longer than the process that launched it."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

# <linux/prctl.h>: deliver a signal to this process when the thread that forked it ends.
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, signum: int = signal.SIGKILL) -> None:
    """Have signum sent to this process when process parent_pid ends, however it ends.

    SIGKILL by default: Scrapy takes SIGTERM as a graceful stop, which downloads every request
    already queued in its downloader first, minutes on a slow site. A killed crawl loses only
    the pages under way (each page is stored in its own transaction).

    On Linux the kernel sends it (prctl PR_SET_PDEATHSIG, through ctypes: the standard library
    has no prctl, and this one call needs no package); elsewhere a thread watches for the
    parent to go. A parent that ended before this call (the subprocess was still starting) is
    caught by comparing parent ids.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    else:
        threading.Thread(target=_watch_parent, args=(parent_pid, signum),
                         name="dealwatch-parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)


def _watch_parent(parent_pid: int, signum: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os.kill(os.getpid(), signum)
