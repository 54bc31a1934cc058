"""Answers with verified citations: quote-exact by default, a language model when configured."""

from rag.answer.types import Answer, AnswerDelta, AnswerSentence, Citation, Turn

__all__ = ["Answer", "AnswerDelta", "AnswerSentence", "Citation", "Turn"]
