"""Documents as context: reading PDF, Word and text files into plain text (`extract`) and
cutting that text into passages a search can find (`chunks`). Pure Python over pypdfium2
(PDF), the standard library (Word files: zipfile + ElementTree) and charset-normalizer (text
encodings). The index lives in the history database (core/history/documents.py); deciding what
a prompt gets, and wording it, is the chat's job (core/chat/documents.py)."""
