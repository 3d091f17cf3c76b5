"""The coding assistant: from a clinical note to a ranked, evidence-backed code set.

``Codebook.code(text, setting=..., date=...)`` is the entry point; see :mod:`.assistant`.
"""

from .model import Coding, Skipped, Suggestion

__all__ = ["Coding", "Skipped", "Suggestion"]
