"""A process's peak resident memory (VmHWM), as a rebuild reports it for itself and its readers."""

from contextlib import suppress
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_PEAK = "5"  # clear_refs: the peak starts over from the memory resident now


def peak_resident() -> int:
    """This process's peak resident memory in bytes; 0 where /proc does not tell it."""
    try:
        lines = STATUS.read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # in kB
    return 0


def reset_peak_resident() -> None:
    """Start this process's peak over from the memory resident now, so that the peak is the
    rebuild's own where the process did other work before (as the bench's does)."""
    with suppress(OSError):
        CLEAR_REFS.write_text(RESET_PEAK)
