"""Sentence splitting (German and English) and packing of sentences into token-bounded passages."""

from __future__ import annotations

import bisect
import itertools
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_text_splitters import TextSplitter

from rag.errors import ConfigError
from rag.types import Passage

logger = logging.getLogger(__name__)

_PACKING_ATTEMPTS = 4

CountTokens = Callable[[list[str]], list[int]]
"""Token counter: gets a batch of strings, returns one count per string."""

# --- sentence splitting -------------------------------------------------------------------------
#
# Rule-based, because the libraries were slower and less accurate on German news. Against the
# gold sentence breaks of XQuAD-R (German / English), boundary precision and recall were: these
# rules 0.990/0.994 and 0.998/0.990; pysbd 0.974/0.980 and 0.981/0.980 (and ~6 s for the 1.6 M
# characters of 998 Wikinews articles, against ~0.1 s here); syntok 0.962/0.983 and 0.976/0.992;
# blingfire 0.961/0.975 and 0.998/0.988. syntok and blingfire split "am 3. Oktober".

# Terminal punctuation, optional closing quotes/brackets, then whitespace: a candidate boundary.
# It starts only where a run of punctuation starts: tried inside the run too, a line of 100,000
# periods took minutes (every start rescans the rest of the run), now it is linear.
_CANDIDATE = re.compile(r"(?<![.!?…])([.!?…]+)([\"'“”‘’»«)\]]*)\s+")

# Blank lines always end a sentence; so does a newline before a bullet or a Markdown heading.
_BLANK_LINES = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_BEFORE_BLOCK_LINE = re.compile(r"\n(?=[ \t]*(?:[-*•]|#{1,6})[ \t])")
_HEADING_LINE = re.compile(r"^#{1,6}[ \t][^\n]*(\n)", re.MULTILINE)

# Abbreviations that never end a sentence, compared lower-cased (the token before the period).
_ABBREVIATIONS = frozenset(
    """
    abg abschn abt adm akad allg amtl anh anm apr assn aufl ausg ave bearb beil bes betr bhf
    bl blvd bros bsp bspw bzgl bzw ca capt chr cmdr co col corp dgl dipl dept dr ebd ehem
    einschl engl entspr erg ev evang evtl exkl fa fam ff fig fr franz frl frz ft geb gebr gegr
    gen ges gest ggf ggfs ggü gov hbf hg hl hon hr hrn hrsg inc inkl insb insbes ing int ital
    jahrh jh jhd jr kath kfm kpt lat lfd lt ltd med mio mr mrd mrs ms mt mwst nachf nat
    ord orig pfr phil pl pp präs prof rd rep rer rev röm sen sgt sog sr st std stellv str
    tsd univ urspr verf vgl vize vors vorm zit zzgl
    """.split()
)
# Abbreviations that end a sentence unless a number follows ("Art. 5", "Nr. 3", "et al. 1998").
_BEFORE_NUMBER = frozenset(
    """
    abb abs al art aug bd dez feb fig jan jul jun kap mär mar nov no nr okt oct op p rn rz s
    sec sep sept tab vol ziff
    """.split()
)
_MONTHS = frozenset(
    """
    januar jänner februar feber märz april mai juni juli august september oktober november
    dezember january february march may june july october december jan feb mär apr jun jul
    aug sep sept okt oct nov dez dec
    """.split()
)
# Nouns that follow German ordinals ("2. Weltkrieg", "zum 3. Mal").
_ORDINAL_NOUNS = frozenset(
    """
    jahrhundert jahrtausend jahrestag geburtstag todestag mal platz rang liga bundesliga klasse
    runde spieltag etappe weltkrieg stock etage auflage ausgabe kapitel abschnitt absatz artikel
    sitzung legislaturperiode wahlperiode amtszeit quartal halbjahr semester lebensjahr parteitag
    akt band teil folge staffel armee division bezirk gebot sinfonie symphonie woche tag fc fsv
    """.split()
)
# Words before a German ordinal ("am 3. Oktober", "der 2. Versuch").
_ORDINAL_PRECEDERS = frozenset(
    """
    am vom zum bis ab seit im beim zur der die das den dem des ihr ihre ihrem ihren ihres sein
    seine seinem seinen seines jeder jedem jeden
    """.split()
)
_DOTTED = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")  # e.g., z.B, U.S, D.C, u.a
_ROMAN = re.compile(r"[IVX]{2,6}")  # "Ludwig XIV. war"
_DAY_MONTH = re.compile(r"\d{1,2}\.\d{1,2}")  # "am 01.06. hat"
_WORD = re.compile(r"\S+")
_HAS_WORD = re.compile(r"\w")
_LETTERS = re.compile(r"[^\W\d_]+")


def split_sentences(text: str, language: str | None = None) -> list[tuple[int, int]]:
    """Character spans `(start, end)` of the sentences of `text`, in order.

    Spans exclude the whitespace between sentences. Blank lines always end a sentence. The rules
    know German and English abbreviations ("z. B.", "Dr.", "e.g."), initials, ordinal dates
    ("am 3. Oktober"), decimal numbers, ellipses, URLs and quotes after the period. `language`
    "en" turns off the German rule that a small number before a period is an ordinal when an
    article or preposition precedes it.
    """
    german_ordinals = language != "en"
    spans: list[tuple[int, int]] = []
    for block_start, block_end in _blocks(text):
        spans += _block_sentences(text, block_start, block_end, german_ordinals)
    return spans


def _block_sentences(
    text: str, block_start: int, block_end: int, german_ordinals: bool
) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = block_start
    for match in _CANDIDATE.finditer(text, block_start, block_end):
        if match.end() >= block_end:
            break
        if _is_boundary(text, match, german_ordinals):
            spans.append((start, match.end(2)))
            start = match.end()
    spans.append((start, _rstrip_end(text, start, block_end)))
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and not _HAS_WORD.search(text, start, end):
            merged[-1] = (merged[-1][0], end)  # a stray quote or dash belongs to the sentence
        else:
            merged.append((start, end))
    return merged


def _blocks(text: str) -> list[tuple[int, int]]:
    """Spans of the text between hard breaks, without surrounding whitespace."""
    cuts: list[tuple[int, int]] = [(m.start(), m.end()) for m in _BLANK_LINES.finditer(text)]
    cuts += [(m.start(), m.start() + 1) for m in _BEFORE_BLOCK_LINE.finditer(text)]
    cuts += [(m.start(1), m.end(1)) for m in _HEADING_LINE.finditer(text)]
    cuts.sort()
    blocks: list[tuple[int, int]] = []
    position = 0
    for cut_start, cut_end in cuts:
        if cut_start >= position:
            blocks.append((position, cut_start))
        position = max(position, cut_end)
    blocks.append((position, len(text)))
    return [_strip_span(text, s, e) for s, e in blocks if text[s:e].strip()]


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    return start, _rstrip_end(text, start, end)


def _rstrip_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _is_boundary(text: str, match: re.Match[str], german_ordinals: bool) -> bool:
    """Whether the candidate (punctuation, closers, whitespace) really ends a sentence."""
    following = text[match.end()]
    if following.islower():
        return False
    punctuation, closers = match.group(1), match.group(2)
    before = text[match.start() - 1] if match.start() > 0 else " "
    if before in "[(":  # an omission "[…]" inside a quote
        return False
    if punctuation != "." or closers:
        return True
    token_start = _token_start(text, match.start())
    token = text[token_start : match.start()]
    return not _is_abbreviation(text, token, token_start, match.end(), german_ordinals)


def _token_start(text: str, period: int) -> int:
    """Start of the word before the period, without leading quotes, brackets or markup."""
    start = period
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while start < period and not text[start].isalnum():
        start += 1  # opening quotes, brackets, wiki markup
    return start


def _is_abbreviation(
    text: str, token: str, token_start: int, next_start: int, german_ordinals: bool
) -> bool:
    """Whether the period after `token` belongs to an abbreviation, initial or ordinal."""
    if not token:
        return False
    lower = token.lower()
    last = re.split(r"[.\-/]", lower)[-1]
    if lower in _ABBREVIATIONS or last in _ABBREVIATIONS or lower.endswith("str"):
        return True  # "...str." is a street: "Hauptstr."
    if len(token) == 1 and token.isalpha():
        return True  # initials "J. R. R.", "z. B.", "u. a."
    if _DOTTED.fullmatch(token) or _ROMAN.fullmatch(token) or _DAY_MONTH.fullmatch(token):
        return True
    next_word = _next_word(text, next_start)
    if last in _BEFORE_NUMBER and next_word[:1].isdigit():
        return True
    if token.isdigit() and len(token) <= 3:
        return _is_ordinal(text, token_start, next_word, german_ordinals)
    return False


def _is_ordinal(text: str, token_start: int, next_word: str, german_ordinals: bool) -> bool:
    """German ordinals: "01. Juni", "3. Oktober 2023", "2. Weltkrieg", "am 3. März"."""
    letters = _LETTERS.match(next_word)
    word = letters.group(0).lower() if letters else ""
    for stem in (word, word[:-1], word[:-2]):  # inflected: "des 19. Jahrhunderts"
        if stem in _MONTHS or stem in _ORDINAL_NOUNS:
            return True
    if not german_ordinals:
        return False
    previous = _LETTERS.findall(text, max(0, token_start - 20), token_start)
    return bool(previous) and previous[-1].lower() in _ORDINAL_PRECEDERS


def _next_word(text: str, start: int) -> str:
    match = _WORD.match(text, start)
    return match.group(0) if match else ""


# --- packing into passages ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """A sentence, or a word-aligned piece of a sentence too long for one passage."""

    start: int
    end: int
    tokens: int
    paragraph_before: bool


def chunk_text(
    text: str,
    count_tokens: CountTokens,
    *,
    max_tokens: int = 200,
    overlap_sentences: int = 1,
    language: str | None = None,
    pages: Sequence[tuple[int, int, int]] = (),
) -> list[Passage]:
    """Pack whole sentences greedily into passages of at most `max_tokens` tokens.

    `count_tokens` is called with batches of strings. Blank lines are preferred break points; a
    sentence longer than `max_tokens` is split at word boundaries; the last `overlap_sentences`
    sentences of a passage open the next one when they fit. `text[p.start:p.end] == p.text` for
    every passage; `page` is the page (from `pages`, `(page, start, end)` spans) where it starts.
    """
    _check_arguments(max_tokens, overlap_sentences)
    sentences = split_sentences(text, language)
    if not sentences:
        return []
    # One batch: the empty string measures the tokens a counter adds to every text.
    empty, *sentence_tokens = _count(count_tokens, ["", *(text[s:e] for s, e in sentences)])
    counter = _Counter(count_tokens, overhead=empty)
    budget = max_tokens
    for _attempt in range(_PACKING_ATTEMPTS):
        units = _units(text, sentences, sentence_tokens, budget, counter)
        spans = _pack(units, budget, overlap_sentences, counter.overhead)
        texts = [text[units[s].start : units[e - 1].end] for s, e in spans]
        excess = max(n - max_tokens for n in counter.count(texts))
        if excess <= 0:
            break
        # The counter is not additive over sentences (its tokens merge across them, say):
        # measured passages are larger than estimated, so pack again with a smaller budget.
        budget = max(1, budget - excess)
    else:
        logger.warning("a passage stays %d tokens over max_tokens=%d", excess, max_tokens)
    return [_passage(text, units[s].start, units[e - 1].end, pages) for s, e in spans]


def _check_arguments(max_tokens: int, overlap_sentences: int) -> None:
    if max_tokens < 1:
        raise ConfigError(f"max_tokens must be at least 1, got {max_tokens}; use e.g. 200.")
    if overlap_sentences < 0:
        raise ConfigError(
            f"overlap_sentences must be 0 or more, got {overlap_sentences}; use e.g. 1."
        )


@dataclass(frozen=True)
class _Counter:
    """The user's counter and its per-text overhead (special tokens added to every text)."""

    count_tokens: CountTokens
    overhead: int

    def count(self, texts: list[str]) -> list[int]:
        return _count(self.count_tokens, texts)


def _count(count_tokens: CountTokens, texts: list[str]) -> list[int]:
    if not texts:
        return []
    counts = list(count_tokens(texts))
    if len(counts) != len(texts):
        raise ConfigError(
            f"count_tokens returned {len(counts)} counts for {len(texts)} texts; it must "
            "return one count per text."
        )
    return [int(n) for n in counts]


def _units(
    text: str,
    sentences: list[tuple[int, int]],
    tokens: list[int],
    budget: int,
    counter: _Counter,
) -> list[_Unit]:
    """Sentences as units; sentences over the budget become word-aligned pieces."""
    units: list[_Unit] = []
    previous_end = 0
    for (start, end), count in zip(sentences, tokens):
        paragraph = bool(units) and text.count("\n", previous_end, start) >= 2
        if count <= budget and not _has_long_word(text, start, end):
            units.append(_Unit(start, end, count, paragraph))
        else:
            pieces = _split_long(text, start, end, budget, counter)
            units += [_Unit(s, e, n, paragraph and i == 0) for i, (s, e, n) in enumerate(pieces)]
        previous_end = end
    return units


def _has_long_word(text: str, start: int, end: int) -> bool:
    if end - start <= MAX_WORD_CHARS:
        return False
    return max(map(len, text[start:end].split()), default=0) > MAX_WORD_CHARS


def _split_long(
    text: str, start: int, end: int, budget: int, counter: _Counter
) -> list[tuple[int, int, int]]:
    """Pieces `(start, end, tokens)` of one over-long sentence, cut between words.

    Words are counted a window at a time: a "sentence" of millions of words (a one-line file)
    costs memory for one window, not for every word at once."""
    overhead = counter.overhead
    pieces: list[tuple[int, int, int]] = []
    piece: tuple[int, int, int] | None = None  # (start, end, tokens) being filled
    matches = _WORD.finditer(text, start, end)
    while window := [(m.start(), m.end()) for m in itertools.islice(matches, _WORD_WINDOW)]:
        counts = counter.count([text[s:e] for s, e in window])
        for (s, e), n in zip(window, counts):
            too_long = n > budget or e - s > MAX_WORD_CHARS
            if piece is not None and (too_long or piece[2] + n - overhead > budget):
                pieces.append(piece)
                piece = None
            if too_long:
                pieces.extend(_split_word(text, s, e, budget, counter, e - s > MAX_WORD_CHARS))
            elif piece is None:
                piece = (s, e, n)
            else:
                piece = (piece[0], e, piece[2] + n - overhead)
    if piece is not None:
        pieces.append(piece)
    return pieces


_WORD_WINDOW = 4096

MAX_WORD_CHARS = 1000
"""Longest piece of one "word" (a data blob, a line without spaces) in a passage, whatever the
counter says: a counter of words (`count_words`, a plain whitespace tokenizer) sees one token in
100,000 letters, and keyword analysis of a word grows with its length (a 10,000-letter word
exhausted the recursion limit of German compound splitting). Real tokenizers give 200 tokens
in about 1,000 characters of such text anyway."""


def _split_word(
    text: str, start: int, end: int, budget: int, counter: _Counter, alone: bool = False
) -> list[tuple[int, int, int]]:
    """A single "word" over the budget or `MAX_WORD_CHARS` (a long URL, a data blob): halve it
    until pieces fit. `alone` pieces count as a full budget, so that packing never joins them
    into the long word again."""
    count = counter.count([text[start:end]])[0]
    if (count <= budget and end - start <= MAX_WORD_CHARS) or end - start <= 1:
        return [(start, end, max(count, budget) if alone else count)]
    middle = (start + end) // 2
    return _split_word(text, start, middle, budget, counter, alone) + _split_word(
        text, middle, end, budget, counter, alone
    )


def _pack(units: list[_Unit], budget: int, overlap: int, overhead: int) -> list[tuple[int, int]]:
    """Greedy packing: `(first, last + 1)` unit index ranges of the passages."""
    spans: list[tuple[int, int]] = []
    first_new, start = 0, 0
    while first_new < len(units):
        total = _size(units[start:first_new], overhead)
        end = first_new
        while end < len(units):
            cost = units[end].tokens - overhead
            if end > first_new and total + cost > budget:
                break
            total += cost
            end += 1
        end = _paragraph_end(units, start, first_new, end, budget, overhead)
        spans.append((start, end))
        start = end - _overlap(units, start, end, overlap, budget, overhead)
        first_new = end
    return spans


def _size(units: Sequence[_Unit], overhead: int) -> int:
    """Estimated tokens of the text spanning `units`: their counts less repeated overhead."""
    return overhead + sum(u.tokens - overhead for u in units)


def _paragraph_end(
    units: list[_Unit], start: int, first_new: int, end: int, budget: int, overhead: int
) -> int:
    """Move the end back to a paragraph break when the passage stays at least half full."""
    if end >= len(units) or units[end].paragraph_before:
        return end
    for k in range(end - 1, first_new, -1):
        if not units[k].paragraph_before:
            continue
        size = _size(units[start:k], overhead)
        if 2 * size >= budget:
            return k
        break
    return end


def _overlap(
    units: list[_Unit], start: int, end: int, wanted: int, budget: int, overhead: int
) -> int:
    """How many of the passage's last units to repeat so the next passage still fits one new."""
    if end >= len(units):
        return 0
    for count in range(min(wanted, end - start - 1), 0, -1):
        if _size(units[end - count : end + 1], overhead) <= budget:
            return count
    return 0


def _passage(text: str, start: int, end: int, pages: Sequence[tuple[int, int, int]]) -> Passage:
    return Passage(text=text[start:end], start=start, end=end, page=_page_at(pages, start))


def _page_at(pages: Sequence[tuple[int, int, int]], offset: int) -> int | None:
    if not pages:
        return None
    starts = [start for _, start, _ in pages]
    index = bisect.bisect_right(starts, offset) - 1
    return pages[max(index, 0)][0]


# --- LangChain adapter --------------------------------------------------------------------------


def count_words(texts: list[str]) -> list[int]:
    """Whitespace word counts: a model-free stand-in for a tokenizer."""
    return [len(t.split()) for t in texts]


class SentenceTextSplitter(TextSplitter):
    """LangChain `TextSplitter` over `chunk_text`: sentence-aware, token-bounded passages.

    `split_text` returns the passage texts; with `add_start_index=True`, `create_documents`
    records each passage's exact start offset.
    """

    def __init__(
        self,
        count_tokens: CountTokens = count_words,
        *,
        max_tokens: int = 200,
        overlap_sentences: int = 1,
        language: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(chunk_size=max_tokens, chunk_overlap=0, **kwargs)
        self._count_tokens = count_tokens
        self._max_tokens = max_tokens
        self._overlap_sentences = overlap_sentences
        self._language = language

    def split_passages(self, text: str) -> list[Passage]:
        """The passages of `text` with their offsets."""
        return chunk_text(
            text,
            self._count_tokens,
            max_tokens=self._max_tokens,
            overlap_sentences=self._overlap_sentences,
            language=self._language,
        )

    def split_text(self, text: str) -> list[str]:
        """The passage texts of `text`."""
        return [p.text for p in self.split_passages(text)]

    def create_documents(
        self, texts: list[str], metadatas: list[dict[Any, Any]] | None = None
    ) -> list[Any]:
        """LangChain documents, with exact `start_index` when `add_start_index` is set."""
        from langchain_core.documents import Document as LangChainDocument

        documents: list[Any] = []
        for text, metadata in zip(texts, _metadatas(metadatas, len(texts))):
            for passage in self.split_passages(text):
                extra = {"start_index": passage.start} if self._add_start_index else {}
                documents.append(
                    LangChainDocument(page_content=passage.text, metadata={**metadata, **extra})
                )
        return documents


def _metadatas(metadatas: Iterable[dict[Any, Any]] | None, count: int) -> list[dict[Any, Any]]:
    return [dict(m) for m in metadatas] if metadatas is not None else [{} for _ in range(count)]
