"""llama.cpp's OpenAI-compatible server (`llama-cpp-python[server]`), started with this project's
llama.cpp set-up: `python -m rag.answer.llama_server --model M.gguf ...` takes the arguments of
`python -m llama_cpp.server`.

A llama-cpp-python built with runtime CPU dispatch (see the README) cannot serve through
`python -m llama_cpp.server` alone: nothing loads its CPU backends ("no backends are loaded").
"""

from __future__ import annotations

from rag.answer.local_model import import_llama_cpp


def main() -> None:
    import_llama_cpp()
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
