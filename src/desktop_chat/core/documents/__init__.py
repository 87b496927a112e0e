"""Documents as context: reading PDF, Word and text files into plain text (`extract`), cutting
that text into passages a search can find (`chunks`), and wording what is sent to the model
(`context`). Pure Python over well-kept libraries: pypdfium2, python-docx, charset-normalizer.
The index lives in the history database (core/history/documents.py); deciding what a prompt
gets is the chat's job (core/chat/documents.py)."""
