"""How a script fails: a UserError (or an OSError a user can fix) is one line on
stderr and exit status 2, never a traceback."""

from __future__ import annotations

import errno
import sys
from pathlib import Path


class UserError(Exception):
    """A problem with the user's input: printed as one line, no traceback."""


# OS errors a user can cause and fix (disk, permissions, a folder where a file goes):
# one line, no traceback. Others are bugs and keep their traceback.
EXPECTED_OS_ERRORS = {
    errno.ENOSPC: "the disk is full; free some space and run the same command again",
    errno.EDQUOT: "the disk quota is exceeded; free some space and run the same command again",
    errno.EROFS: "the file system is read-only; work in a writable folder",
    errno.EACCES: "permission denied; check the folder's permissions or pick another folder",
    errno.EPERM: "operation not permitted; check the folder's permissions or pick another folder",
    errno.EISDIR: "it is a folder; give the path of a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder; fix the path",
    errno.ENOENT: "no such file or folder",
    errno.ELOOP: "a symbolic link loop (links that point at each other); fix or remove the link",
}
LOOP = "Symlink loop from "  # pathlib's resolve() raises RuntimeError(LOOP + repr(path)) for a loop


def os_error_message(e: OSError) -> str | None:
    why = EXPECTED_OS_ERRORS.get(e.errno)
    if why is None:
        return None
    where = e.filename if e.filename is not None else ""
    where = f"{where}: " if where != "" else ""
    return f"{where}{e.strerror or type(e).__name__}: {why}"


def write_failure(e: BaseException, folder) -> str | None:
    """One line for a failed write (MLX raises RuntimeError "[write] Unable to write ...",
    Python an OSError) when the disk where `folder` lies is full or not writable."""
    if isinstance(e, OSError):
        return os_error_message(e)
    if not (isinstance(e, RuntimeError) and "write" in str(e).lower()):
        return None
    import shutil

    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < 64 << 20:
        return f"{folder}: the disk is full ({free // 1024} KiB free); free some space and run the same command again"
    return f"{folder}: {e}; check that the folder is writable and has space, then run the same command again"


def run_main(main) -> None:
    """Run a script's main(); a UserError (or an OSError a user can fix: full disk,
    read-only folder, permissions) becomes `error: ...` and exit status 2."""
    try:
        sys.exit(main())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        message = os_error_message(e)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except RuntimeError as e:
        if not str(e).startswith(LOOP):
            raise
        print(f"error: {str(e)[len(LOOP):].strip(chr(39))}: {EXPECTED_OS_ERRORS[errno.ELOOP]}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)

