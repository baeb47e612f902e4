"""Errors of the knowledge base. ``knowledge_base`` never imports ``app``, so it has its own base class;
the CLI reports these like ``app.errors.ShopdeskError`` (message, exit code 2).

KnowledgeBaseError (a ValueError: all of these are bad input or bad data, never a bug)
 +-- ArticleError     an article file is malformed or two articles share an id (names the files)
 +-- FaqImportError   a question/answer file has bad rows (lists them by line); nothing was imported
 +-- IndexUnavailableError  the Chroma index is missing, empty, damaged or its server unreachable
                      (says how to rebuild it); the FAQ answers "can't search right now" meanwhile
"""


class KnowledgeBaseError(ValueError):
    pass


class ArticleError(KnowledgeBaseError):
    pass


class IndexUnavailableError(KnowledgeBaseError):
    pass


class FaqImportError(KnowledgeBaseError):
    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listed = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s), nothing was imported:\n{listed}")
