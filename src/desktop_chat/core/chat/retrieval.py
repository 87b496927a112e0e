"""Hybrid retrieval: the passages that best match a prompt by their words (BM25, the
history's FTS5 index) and by their meaning (embedding vectors from the profile's server),
fused into one ranking.

When the user turns embeddings on for a profile, each passage of the conversation's searched
documents is embedded once per content hash and model (kept in the history), the prompt is
embedded per request, and both rankings are fused. Everything but awaiting the server runs in
one worker thread of its own: reading vectors, the matrix product, the SQL. If the server has
no embeddings endpoint or not that model, or fails, retrieval falls back to BM25 for the rest
of the session, says so once (`notify`) and logs it; the turn goes on.

Why reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009) rather than a weighted sum
of scores: BM25 scores and cosine similarities live on unrelated scales (BM25's grows with the
question's length and its words' rarity; each embeddings model crowds cosines differently into
its own narrow band), so a weighted sum needs tuning per model and per corpus, which a user
cannot do. RRF uses only each list's ranks, score = Σ 1 / (k + rank) with k = 60: no
normalising, nothing to tune, and robust when one list is poor: a question worded with
synonyms BM25 misses still gets the vectors' best passages, a rare part number the vectors
blur still gets BM25's. It is the default fusion of Elasticsearch, OpenSearch and Azure AI
Search's hybrid search for the same reasons.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from desktop_chat.core.history.documents import SEARCH_LIMIT
from desktop_chat.core.history.store import Store, StoreError
from desktop_chat.core.llm.client import ChatClient
from desktop_chat.core.llm.errors import ChatError
from desktop_chat.core.model.message import Passage

if TYPE_CHECKING:
    import numpy

log = logging.getLogger("desktop_chat.documents")

RRF_K = 60
# Candidates each ranking contributes before fusing: what a prompt can use, twice over.
CANDIDATES = 2 * SEARCH_LIMIT
# FTS5's bm25() is negative, better is lower; an idf of a word in every passage is 1e-6.
MIN_BM25 = 1e-3
# Passages per /embeddings request: small enough that one answer's JSON parses in a few ms
# (see ChatClient.embed) and a slow local server shows progress; large enough to be few.
EMBED_BATCH = 64

Notify = Callable[[str], None]
Progress = Callable[[str | None], None]  # a status line while passages are embedded; None: done


def _numpy() -> Any:
    """numpy, its BLAS on one thread. Its default, a thread per core, made one matrix-vector
    product over 2,000 passages take 28 ms instead of 0.4 on a 2-core machine (the threads
    spin-wait for each other and for the window's thread). Only has effect before numpy's
    first import; the environment is the only knob OpenBLAS reads at load time."""
    if "numpy" not in sys.modules:
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, "1")
    import numpy

    return numpy


def fuse(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[int]:
    """Reciprocal rank fusion of rankings of ids (best first): the ids by Σ 1/(k + rank),
    best first; ties keep the order in which the ids were first seen."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda item: -scores[item])


def pack(vector: Sequence[float]) -> bytes:
    """A vector as the history keeps it: float32, little-endian."""
    return struct.pack(f"<{len(vector)}f", *vector)


class HybridRetrieval:
    """BM25 + embeddings over one history, with one server's embeddings `model`."""

    def __init__(self, store: Store, client: ChatClient, model: str,
                 notify: Notify | None = None) -> None:
        self.store = store
        self.client = client
        self.model = model
        self.notify = notify
        self.unavailable: str | None = None  # why embeddings are not used (after a failure)
        # document hash -> (passage ids, their unit vectors as rows); only the worker touches it
        self._matrices: dict[str, tuple[Any, Any]] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrieval")
        # one embedding run at a time: a prompt waits for the one its document started
        self._embedding = asyncio.Lock()

    def close(self) -> None:
        # queued work still runs: a reply in flight keeps the retrieval it started with
        self._executor.shutdown(wait=False)

    async def search(self, shas: Sequence[str], prompt: str, limit: int = SEARCH_LIMIT,
                     progress: Progress | None = None) -> list[Passage] | None:
        """The best passages of these documents for `prompt`, best first; None when
        embeddings are unavailable (the caller searches by words alone)."""
        if self.unavailable is not None or not shas:
            return None
        try:
            await self.embed_documents(list(shas), progress)
            [query] = await self.client.embed(self.model, [prompt])
            return await self._in_worker(self.rank, list(shas), prompt, query, limit)
        except (ChatError, StoreError) as exc:
            self._give_up(str(exc))
        except Exception as exc:  # a bug of ours, or odd vectors: words alone still work
            log.exception("hybrid retrieval failed")
            self._give_up(f"searching by meaning failed ({type(exc).__name__}; the log has "
                          "the details).")
        return None

    async def prepare(self, shas: Sequence[str]) -> None:
        """Embed these documents' passages now, in the background (a document was just
        attached), so that the first question about them does not wait for it; a failure is
        the same fallback as in `search`."""
        if self.unavailable is not None:
            return
        try:
            await self.embed_documents(list(shas))
        except (ChatError, StoreError) as exc:
            self._give_up(str(exc))
        except Exception as exc:
            log.exception("embedding a document failed")
            self._give_up(f"embedding the document failed ({type(exc).__name__}; the log has "
                          "the details).")

    async def embed_documents(self, shas: list[str], progress: Progress | None = None) -> int:
        """Embed the passages of these documents that have no vector for the model yet;
        returns how many were embedded."""
        async with self._embedding:
            return await self._embed_missing(shas, progress)

    async def _embed_missing(self, shas: list[str], progress: Progress | None) -> int:
        missing = await self._in_worker(self.store.unembedded_passages, shas, self.model)
        try:
            for start in range(0, len(missing), EMBED_BATCH):
                if progress is not None:
                    progress(f"Embedding document passages: {start:,} of {len(missing):,}…")
                batch = missing[start:start + EMBED_BATCH]
                vectors = await self.client.embed(self.model, [text for _, text in batch])
                await self._in_worker(self._keep, batch, vectors, shas)
        finally:
            if progress is not None and missing:
                progress(None)
        if missing:
            log.info("embedded %d passage(s) with %s", len(missing), self.model)
        return len(missing)

    # -- in the worker thread ------------------------------------------------------------

    def rank(self, shas: list[str], prompt: str, query: Sequence[float], limit: int,
             ) -> list[Passage]:
        """Fused BM25 + vector ranking (worker thread; also what the benchmark times)."""
        # A match only on words found in (nearly) every passage ("harbour" in a port's
        # reports) has a BM25 score of about 0: no ranking at all, so it does not vote.
        words = [cid for cid, score in self.store.ranked_passage_ids(shas, prompt, CANDIDATES)
                 if score < -MIN_BM25]
        meaning = self.nearest(shas, query, CANDIDATES)
        return self.store.passages(fuse([words, meaning])[:limit])

    def nearest(self, shas: list[str], query: Sequence[float], limit: int) -> list[int]:
        """Passage ids by cosine similarity to `query`, best first."""
        np = _numpy()

        q = np.asarray(query, dtype=np.float32)
        q /= float(np.linalg.norm(q)) or 1.0
        ids, scores = [], []
        for sha in shas:
            found, matrix = self._matrix(sha)
            if len(found) and matrix.shape[1] == q.shape[0]:  # another model's width: skip
                ids.append(found)
                scores.append(matrix @ q)
        if not ids:
            return []
        all_ids, all_scores = np.concatenate(ids), np.concatenate(scores)
        if len(all_scores) > limit:
            top = np.argpartition(-all_scores, limit)[:limit]
        else:
            top = np.arange(len(all_scores))
        top = top[np.argsort(-all_scores[top], kind="stable")]
        return [int(i) for i in all_ids[top]]

    def _matrix(self, sha: str) -> tuple[numpy.ndarray, numpy.ndarray]:
        np = _numpy()

        if (cached := self._matrices.get(sha)) is not None:
            return cached
        rows = self.store.passage_vectors(sha, self.model)
        widths = {len(blob) for _, blob in rows}
        if not rows or len(widths) != 1:
            ids, matrix = np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        else:
            ids = np.fromiter((i for i, _ in rows), dtype=np.int64, count=len(rows))
            matrix = np.frombuffer(b"".join(b for _, b in rows), dtype="<f4").reshape(
                len(rows), -1).astype(np.float32)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            matrix /= np.where(norms == 0, 1.0, norms)
        self._matrices[sha] = (ids, matrix)
        return ids, matrix

    def _keep(self, batch: list[tuple[int, str]], vectors: list[list[float]],
              shas: list[str]) -> None:
        self.store.add_passage_vectors(self.model, [(cid, pack(v)) for (cid, _), v in
                                                    zip(batch, vectors, strict=True)])
        for sha in shas:  # read again, with the new rows, when next needed
            self._matrices.pop(sha, None)

    # -- helpers --------------------------------------------------------------------------

    async def _in_worker(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function,
                                                                *args)

    def _give_up(self, reason: str) -> None:
        self.unavailable = reason
        log.warning("embeddings with %s unavailable, searching documents by words only: %s",
                    self.model, reason)
        if self.notify is not None:
            self.notify(f"Embeddings are not available: {reason} Documents are searched by "
                        "their words only (BM25) for the rest of this session; nothing was "
                        "lost. Check the embeddings model in Settings › Providers.")
