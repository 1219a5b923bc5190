"""What a session sees of the container's processes, for the isolation tests."""

from __future__ import annotations

import ast

from sandbox.pool import Session
from sandbox.result import Status

# Other processes by owner: the user's that can still run (not a zombie, not PF_EXITING: a
# killed process the kernel is still tearing down), the user's still being torn down, and
# root's (pid 1 and the spare interpreter the supervisor forks ahead, root until handed out).
OTHER_PROCESSES = """
import os
def _owner(pid):
    try:
        fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
        if fields[0] == 'Z':
            return None
        return os.stat(f'/proc/{pid}').st_uid, bool(int(fields[6]) & 0x4)
    except OSError:
        return None
_owners = [o for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()
           for o in [_owner(p)] if o is not None]
(sum(uid == os.getuid() and not exiting for uid, exiting in _owners),
 sum(uid == os.getuid() and exiting for uid, exiting in _owners),
 sum(uid == 0 for uid, _ in _owners))
"""


async def other_processes(session: Session) -> tuple[int, int, int]:
    """(the user's other processes that can run, the user's being torn down, root's)."""
    result = await session.run(OTHER_PROCESSES)
    assert result.status is Status.ok and result.value is not None, result.error
    running, exiting, roots = ast.literal_eval(result.value)
    return running, exiting, roots
