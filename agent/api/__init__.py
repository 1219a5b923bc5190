"""The REST API: runs, their live events over SSE, and an OpenAI-compatible facade."""
