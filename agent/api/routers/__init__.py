"""One module per router: runs, threads, the OpenAI facade, the Agent Protocol, health."""
