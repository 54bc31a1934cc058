"""The chat UI (Gradio), the HTTP API (FastAPI) and the `rag serve`/`rag start` commands;
`ui` imports `rag`, never the other way round."""
