"""Language-model backends behind the `Generator` protocol, chosen by `generation.backend`.

- `packaged` (the default): the bundled Qwen2.5-Coder-1.5B-Instruct GGUF, assembled from its
  part packages into the cache (`rag.answer.local_model`), run in-process by llama.cpp.
- `llamacpp`: a GGUF file of your own, run in-process by llama.cpp.
- `openai`: any OpenAI-compatible chat endpoint (Ollama, vLLM, a llama.cpp server, OpenAI),
  through LangChain's `ChatOpenAI`. The API key comes from the environment variable named in
  `generation.api_key_env`, never from a file.
- `none`: no language model; answers quote the sources.

A model that cannot be assembled or loaded is a `ModelError`; every failure of a running model
(down, timing out, answering garbage) is a `GeneratorError` whose message names the endpoint or
file and what to check.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from rag.answer.reader import Reading
from rag.errors import ConfigError, GeneratorError

if TYPE_CHECKING:
    from rag.answer.reader import CopySpan
    from rag.settings import GenerationSettings

Messages = Sequence[tuple[str, str]]


log = logging.getLogger(__name__)


class Generator(Protocol):
    """Streams the text of a chat completion for (role, content) messages."""

    id: str

    def stream(self, messages: Messages) -> Iterator[str]: ...


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return ""


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of a chain: LangChain wraps openai's "Connection error.", which
    wraps the useful "[Errno 111] Connection refused"."""
    for _ in range(20):
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


class OpenAICompatibleGenerator:
    """A chat model behind an OpenAI-compatible HTTP endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 400,
        timeout: float = 120.0,
    ) -> None:
        from langchain_openai import ChatOpenAI

        self.base_url, self.model = base_url, model
        self.id = f"openai:{model}@{base_url}"
        self._llm = ChatOpenAI(
            base_url=base_url,
            model=model,
            api_key=api_key or "not-needed",  # local servers ignore it
            temperature=temperature,
            max_tokens=max_tokens,
            timeout=timeout,
            max_retries=1,
            streaming=True,
            # ChatOpenAI sends only `max_completion_tokens`, which llama-cpp-python's server
            # ignores (it then writes until the context is full); local servers all know the
            # older `max_tokens`. Not to OpenAI itself: its reasoning models refuse it.
            extra_body=None if "api.openai.com" in base_url else {"max_tokens": max_tokens},
        )

    def stream(self, messages: Messages) -> Iterator[str]:
        import openai

        where = f"the language model {self.model!r} at {self.base_url}"
        try:
            for chunk in self._llm.stream(list(messages)):
                text = _text(chunk.content)
                if text:
                    yield text
        except openai.APITimeoutError:
            raise GeneratorError(
                f"{where} did not answer in time; raise generation.timeout or check the server"
            ) from None
        except openai.APIConnectionError as exc:
            raise GeneratorError(
                f"cannot reach {where} ({_root_cause(exc)}); start the server or fix "
                "generation.base_url"
            ) from None
        except openai.APIStatusError as exc:
            body = exc.response.text[:200] if exc.response is not None else ""
            hint = {
                401: "set the API key in the environment variable named by generation.api_key_env",
                404: "check generation.model and that base_url ends in /v1",
            }.get(exc.status_code, "check the server's log")
            raise GeneratorError(
                f"{where} answered HTTP {exc.status_code}: {body!r}; {hint}"
            ) from None
        except (openai.APIError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise GeneratorError(
                f"{where} sent a response that is not an OpenAI-compatible chat completion "
                f"({type(exc).__name__}: {str(exc)[:200]}); check that base_url points at an "
                "OpenAI-compatible /v1 endpoint"
            ) from None


class LlamaCppGenerator:
    """A GGUF model run in this process by llama.cpp (its chat template from the GGUF file),
    loaded through `rag.answer.local_model.load_llama` (the CPU backend for this machine).

    llama-cpp-python is used directly: LangChain's ChatLlamaCpp lives in the langchain-community
    package, which is being sunset, and cannot pick the model's chat format.
    """

    def __init__(
        self,
        gguf_path: str,
        *,
        temperature: float = 0.0,
        max_tokens: int = 400,
        context_tokens: int = 4096,
        threads: int | None = None,
        model_id: str | None = None,
    ) -> None:
        from rag.answer.local_model import load_llama

        if not os.path.isfile(gguf_path):
            raise ConfigError(
                f"generation.gguf_path {gguf_path!r} is not a file; point it at a .gguf model"
            )
        self.id = model_id or f"llamacpp:{os.path.basename(gguf_path)}"
        self.gguf_path = gguf_path
        self.temperature, self.max_tokens = temperature, max_tokens
        self._llm = load_llama(gguf_path, n_ctx=context_tokens, n_threads=threads)
        self._pieces: dict[int, bytes] = {}
        self._busy = threading.Lock()
        """One llama.cpp context runs one reply at a time; other callers wait here."""

    def stream(self, messages: Messages) -> Iterator[str]:
        try:
            with self._busy:
                chunks = self._llm.create_chat_completion(
                    messages=[{"role": role, "content": content} for role, content in messages],
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                    stream=True,
                )
                for chunk in chunks:
                    text = chunk["choices"][0].get("delta", {}).get("content")
                    if text:
                        yield text
        except Exception as exc:  # noqa: BLE001  # anything llama.cpp raises mid-answer
            raise GeneratorError(
                f"llama.cpp failed while generating with {self.gguf_path}: {exc}"
            ) from None

    def read_phrase(
        self,
        messages: Messages,
        none: str,
        max_tokens: int = 32,
        *,
        copy: CopySpan | None = None,
    ) -> Reading:
        """A short reply (greedy), the probability that its first token begins `none` (the
        model's own confidence that the passages do not answer), and with `copy` the
        probability the model gave the reply's tokens.

        With `copy`, each step takes the model's best token that keeps the reply inside the
        sources (or `none` first), and the reply ends only at a word's end. A reply that only
        repeats words of the question is read once more with its first token barred (the
        prompt is cached: about a second), and that second reply is returned."""
        reading, first = self._read_once(messages, none, max_tokens, copy, frozenset())
        if copy is not None and first is not None and copy.repeats_question(reading.text):
            again, _ = self._read_once(messages, none, max_tokens, copy, frozenset({first}))
            reading = Reading(again.text, reading.p_none, again.p_phrase)
        if copy is not None and reading.text.strip().upper().startswith(none):
            # The phrase it would have given instead: the reader weighs it against its NONE.
            barred = frozenset(self._first_tokens(none))
            instead, _ = self._read_once(messages, none, max_tokens, copy, barred)
            reading = replace(reading, instead=instead.text, p_instead=instead.p_phrase)
        return reading

    def _read_once(
        self,
        messages: Messages,
        none: str,
        max_tokens: int,
        copy: CopySpan | None,
        barred: frozenset[int],
    ) -> tuple[Reading, int | None]:
        """The reading, and the first token chosen under `copy`."""
        import llama_cpp
        import numpy as np

        first: list[np.ndarray] = []
        steer = _CopySteer(self, copy, none, barred) if copy is not None else None

        def keep_first(ids: Any, scores: Any) -> Any:
            if not first:
                first.append(np.array(scores, dtype=np.float64))
            return scores if steer is None else steer(ids, scores)

        try:
            with self._busy:
                reply = self._llm.create_chat_completion(
                    messages=[{"role": role, "content": content} for role, content in messages],
                    temperature=0.0,
                    max_tokens=max_tokens,
                    logits_processor=llama_cpp.LogitsProcessorList([keep_first]),
                )
        except Exception as exc:  # noqa: BLE001  # anything llama.cpp raises
            raise GeneratorError(
                f"llama.cpp failed while reading with {self.gguf_path}: {exc}"
            ) from None
        text = _text(reply["choices"][0]["message"].get("content"))
        log.debug("reader prompt: %s tokens", reply.get("usage", {}).get("prompt_tokens"))
        p_phrase = math.exp(steer.logprob) if steer is not None and not steer.free else None
        chosen = steer.first if steer is not None else None
        if not first:
            return Reading(text, None, p_phrase), chosen
        logits = first[0] - first[0].max()
        probs = np.exp(logits) / np.exp(logits).sum()
        return Reading(text, float(probs[self._first_tokens(none)].sum()), p_phrase), chosen

    def piece(self, token: int) -> bytes:
        """The bytes of one token (cached: the vocabulary is 150k tokens, a reply reads few)."""
        cached = self._pieces.get(token)
        if cached is None:
            cached = self._pieces[token] = self._llm.detokenize([token])
        return cached

    def _first_tokens(self, word: str) -> list[int]:
        """Token ids a reply beginning with `word` can start with ("NONE", " NONE", ...)."""
        ids = set()
        for variant in (word, " " + word, word.capitalize(), " " + word.capitalize()):
            tokens = self._llm.tokenize(variant.encode(), add_bos=False, special=False)
            if tokens:
                ids.add(tokens[0])
        return sorted(ids)


class _CopySteer:
    """llama-cpp-python logits processor holding a greedy reply to a `CopySpan`: of the
    model's tokens, best first, the first one the constraint allows gets all the probability.
    The reply may instead begin with the `none` word (then it is left free), and ends with the
    end-of-turn token or a line break only where the constraint lets it stop. `barred` tokens
    may not begin it."""

    _LOOK = (64, 2048)  # candidates examined per step: the best 64, then 2048, then all

    def __init__(
        self, generator: LlamaCppGenerator, copy: CopySpan, none: str, barred: frozenset[int]
    ) -> None:
        llm = generator._llm  # the generator's own model
        self._gen, self._copy, self._barred = generator, copy, barred
        self.first: int | None = None
        """The reply's first token, once chosen."""
        self._none = {
            t
            for t in generator._first_tokens(none)
            if generator.piece(t).strip().upper() == none.encode()
        }
        self._ends = {llm.token_eos()} | {
            t for t in llm.tokenize(b"<|im_end|><|endoftext|>", add_bos=False, special=True)
        }
        self._prompt: int | None = None
        self.free = False
        """The reply began with `none`: not held to the sources from there on."""
        self.logprob = 0.0
        """Log-probability the model gave the tokens chosen under the constraint."""

    def __call__(self, ids: Any, scores: Any) -> Any:
        import numpy as np

        if self._prompt is None:
            self._prompt = len(ids)
        if self.free:
            return scores
        reply = b"".join(self._gen.piece(int(t)) for t in ids[self._prompt :])
        chosen = self._choose(reply, scores, np)
        if not reply:
            self.first = chosen
        self.free = not reply and chosen in self._none  # NONE: the rest is not a phrase
        top = float(scores.max())
        self.logprob += float(scores[chosen]) - top - math.log(np.exp(scores - top).sum())
        out = np.full_like(scores, -np.inf)
        out[chosen] = 0.0
        return out

    def _choose(self, reply: bytes, scores: Any, np: Any) -> int:
        looked = 0
        for look in (*self._LOOK, len(scores)):
            top = np.argpartition(-scores, look - 1)[:look]
            for t in top[np.argsort(-scores[top])][looked:]:
                t = int(t)
                piece = self._gen.piece(t)
                if t in self._ends or b"\n" in piece:
                    if reply and self._copy.may_stop(reply):
                        return t
                elif (
                    piece
                    and (reply or t not in self._barred)
                    and ((not reply and t in self._none) or self._copy.extends(reply, piece))
                ):
                    return t  # (special tokens have no piece: never part of a phrase)
            looked = look
        return next(iter(self._ends))  # nothing fits: end, and let grounding judge the reply


def _openai(cfg: GenerationSettings) -> Generator:
    if not cfg.base_url or not cfg.model:
        raise ConfigError(
            "the openai backend needs generation.base_url and generation.model (e.g. "
            "RAG_GENERATION__BASE_URL=http://127.0.0.1:11434/v1 RAG_GENERATION__MODEL=llama3.2)"
        )
    return OpenAICompatibleGenerator(
        cfg.base_url,
        cfg.model,
        api_key=os.environ.get(cfg.api_key_env),
        temperature=cfg.temperature,
        max_tokens=cfg.max_tokens,
        timeout=cfg.timeout,
    )


def _llamacpp(cfg: GenerationSettings) -> Generator:
    if cfg.gguf_path is None:
        raise ConfigError("the llamacpp backend needs generation.gguf_path (a .gguf file)")
    return LlamaCppGenerator(
        str(cfg.gguf_path),
        temperature=cfg.temperature,
        max_tokens=cfg.max_tokens,
        context_tokens=cfg.context_tokens,
        threads=cfg.threads,
    )


def _packaged(cfg: GenerationSettings) -> Generator:
    from rag.answer import local_model

    path = local_model.assemble(cfg.model_cache_dir())  # at once when already verified
    return LlamaCppGenerator(
        str(path),
        temperature=cfg.temperature,
        max_tokens=cfg.max_tokens,
        context_tokens=cfg.context_tokens,
        threads=cfg.threads,
        model_id=f"packaged:{local_model.PACKAGED_MODEL.name}",
    )


def _none(cfg: GenerationSettings) -> Generator:
    raise ConfigError(
        "generation.backend is 'none': no language model is configured; use the quote mode, "
        f"or set generation.backend to one of {', '.join(sorted(set(BACKENDS) - {'none'}))}"
    )


BACKENDS: dict[str, Callable[[GenerationSettings], Generator]] = {
    "packaged": _packaged,
    "llamacpp": _llamacpp,
    "openai": _openai,
    "none": _none,
}


def create_generator(cfg: GenerationSettings) -> Generator:
    """The backend named by `cfg.backend`."""
    try:
        factory = BACKENDS[cfg.backend]
    except KeyError:
        raise ConfigError(
            f"unknown generation backend {cfg.backend!r}; valid: {', '.join(sorted(BACKENDS))}"
        ) from None
    return factory(cfg)
