"""The START loop: reasoning and sandboxed code execution alternating inside one answer."""

from agent.errors import AgentError, PortBusy, StoreError, StoreUnavailable, StoreWriteError

__all__ = ["AgentError", "PortBusy", "StoreError", "StoreUnavailable", "StoreWriteError"]
