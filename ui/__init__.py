"""The chat UI (Gradio) and the HTTP API: not built yet (see the issues)."""
