"""The START loop: reasoning and sandboxed code execution alternating inside one answer."""
