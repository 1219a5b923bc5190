"""The Streamlit chat UI: a pure HTTP client of the startbox REST API (it imports nothing else
of startbox, so it runs in its own container)."""
