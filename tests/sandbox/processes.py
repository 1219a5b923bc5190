"""What a session sees of the container's processes, for the isolation tests."""

from __future__ import annotations

import ast

from sandbox.pool import Session
from sandbox.result import Status

# Live processes beside the caller, by owner: the user's, and root's (pid 1 and the spare
# interpreter the supervisor forks ahead, which stays root until it is handed out).
OTHER_PROCESSES = """
import os
def _owner(pid):
    try:
        state = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0]
        return None if state == 'Z' else os.stat(f'/proc/{pid}').st_uid
    except OSError:
        return None
_owners = [_owner(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]
(sum(o == os.getuid() for o in _owners), sum(o == 0 for o in _owners))
"""


async def other_processes(session: Session) -> tuple[int, int]:
    """(the user's other live processes, root's: pid 1 and at most one spare)."""
    result = await session.run(OTHER_PROCESSES)
    assert result.status is Status.ok and result.value is not None, result.error
    users, roots = ast.literal_eval(result.value)
    return users, roots
