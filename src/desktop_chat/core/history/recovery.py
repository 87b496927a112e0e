"""Opening whatever the data folder holds: a damaged history is kept aside under a clear name,
what SQLite can still read is salvaged into a fresh history, and the user is told what came
back; a folder that cannot be written leaves the app working for the session, saying so.

Salvage copies rows as they are (values are checked when read, like every row) table by
table: first in one scan; if a damaged page breaks the scan, row by row by rowid, so one bad
page loses only the rows on it. Messages whose conversation row was lost are kept under a
"Recovered messages" conversation rather than dropped; links to lost messages become roots.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from desktop_chat.core.history.db import connect, lenient_decode, server_text, transaction
from desktop_chat.core.history.records import StoreError
from desktop_chat.core.history.store import Store

log = logging.getLogger("desktop_chat.store")

# Rowids probed one by one when a table cannot be scanned and its largest rowid is unknown.
PROBE_LIMIT = 200_000
PROBE_GAP = 2_000  # ...stopping this far past the last row found
_MAGIC = b"SQLite format 3\x00"
_TABLES = ("conversations", "messages", "attachments")
_DAMAGE = ("malformed", "not a database", "corrupt", "disk image", "encrypted")


@dataclass(frozen=True, slots=True)
class Recovered:
    """What a salvage brought back from a damaged file, and what it could not read."""

    kept_aside: Path
    conversations: int = 0
    messages: int = 0
    unreadable_rows: int = 0  # rows on damaged pages (or the whole file, if unreadable)

    def notice(self) -> str:
        lost = (f" {self.unreadable_rows} damaged "
                f"{'entry' if self.unreadable_rows == 1 else 'entries'} could not be read."
                if self.unreadable_rows else "")
        return (f"The history file was damaged. {self.conversations} conversation(s) with "
                f"{self.messages} message(s) were recovered into a new history.{lost} The "
                f"damaged file was kept as {self.kept_aside.name} in {self.kept_aside.parent}. "
                "New chats are saved as usual.")


def open_history(path: Path, *, check: bool = True) -> tuple[Store | None, str | None]:
    """The history at `path`, opened, checked and if need be recovered; or None with what to
    tell the user when nothing can be saved this session. Never raises. `check=False` leaves
    sqlite's page check (tens of ms for a big history) to `check_open`, which the app runs
    in the background once its window is on screen."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return None, not_writable(path.parent, exc)
    remove_partial_backups(path)
    try:
        store = Store(path)
    except StoreError as exc:
        cause = exc.__cause__
        if not is_damage(cause):
            log.error("history unavailable: %s", exc)
            if isinstance(cause, OSError | sqlite3.OperationalError) and _unwritable(path):
                return None, not_writable(path.parent, cause)
            return None, f"{exc} Conversations are not saved in this session."
        return _recover(path, cause)
    if not check:
        return store, None
    try:
        problems = store.quick_check()
    except StoreError as exc:
        if not is_damage(exc.__cause__):  # e.g. a passing I/O error: never move a sound file
            log.error("history check could not run: %s", exc)
            return store, None
        problems = [str(exc)]
    if not problems:
        return store, None
    store.close()
    log.error("history quick_check: %s", "; ".join(problems[:5]))
    return _recover(path, sqlite3.DatabaseError(problems[0]))


def check_open(store: Store) -> str | None:
    """The page check `open_history(check=False)` left out, for a store already in use. It
    reads on a connection of its own, so the store stays usable meanwhile; a damaged file is
    then recovered in place (`Store.reopen`: other uses of the store wait for it). Returns
    what to tell the user, None for a sound file. Blocking: run it off the GUI thread."""
    try:
        conn = connect(store.path, busy_timeout_s=5.0)
        try:
            found = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if not is_damage(exc):  # e.g. a passing I/O error: never move a sound file
            log.error("history check could not run: %s", exc)
            return None
        found = [str(exc)]
    if found == ["ok"]:
        return None
    log.error("history quick_check: %s", "; ".join(found[:5]))

    def recover() -> str | None:
        fresh, notice = _recover(store.path, sqlite3.DatabaseError(found[0]))
        if fresh is not None:
            fresh.close()
        return notice

    try:
        return store.reopen(recover)
    except StoreError as exc:
        log.error("history unavailable after recovery: %s", exc)
        return f"{exc} New messages may not be saved."


def remove_partial_backups(path: Path) -> None:
    """A migration interrupted while copying the file aside leaves `<name>.v<N>-<time>Z.bak
    .partial`; the migration, not yet done, takes a whole backup again."""
    for partial in path.parent.glob(f"{path.name}.v*.bak.partial"):
        try:
            partial.unlink()
            log.info("removed an unfinished backup: %s", partial.name)
        except OSError as exc:
            log.warning("could not remove the unfinished backup %s: %s", partial.name, exc)


def is_damage(exc: BaseException | None) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and any(
        word in str(exc).lower() for word in _DAMAGE)


def not_writable(folder: Path, exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    return (f"desktop-chat cannot write to {folder} ({reason}), so nothing will be saved in "
            "this session: conversations last until you close the app. To fix it, make that "
            "folder writable, or start desktop-chat with --data-dir set to one that is.")


def _unwritable(path: Path) -> bool:
    probe = path.parent / f".write-test-{time.time_ns()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return True
    return False


def _recover(path: Path, damage: BaseException) -> tuple[Store | None, str | None]:
    log.error("history at %s is damaged (%s): keeping it aside and recovering", path, damage)
    try:
        aside = set_aside(path)
    except OSError as exc:
        log.error("could not move the damaged history aside: %s", exc)
        return None, (f"The history file {path} is damaged and could not be moved aside "
                      f"({exc.strerror or exc}). Conversations are not saved in this session.")
    try:
        Store(path).close()  # a fresh history, at the current schema
        recovered = salvage(aside, path)
    except (sqlite3.Error, StoreError, OSError) as exc:  # salvage is best effort
        log.exception("salvage failed")
        notice = (f"The history file was damaged and nothing could be recovered from it "
                  f"({exc}). It was kept as {aside.name} in {aside.parent}.")
    else:
        log.info("recovered %s", recovered)
        notice = recovered.notice()
    try:
        return Store(path), notice
    except StoreError as exc:
        return None, f"{notice} {exc} Conversations are not saved in this session."


def set_aside(path: Path) -> Path:
    """Move the history (and its -wal / -shm files) to `history.damaged-<time>.sqlite3`."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.stem}.damaged-{stamp}{path.suffix}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.stem}.damaged-{stamp}-{n}{path.suffix}")
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            extra.rename(aside.with_name(aside.name + suffix))
    path.rename(aside)
    return aside


def salvage(damaged: Path, target: Path) -> Recovered:
    """Copy every readable row of `damaged` into `target` (a fresh, closed history)."""
    readable = _with_header(damaged)
    try:
        source = sqlite3.connect(f"file:{readable}?mode=ro", uri=True, isolation_level=None)
        # A damaged schema page must not hide the tables it still describes (what sqlite's
        # own .recover relies on too); read-only, so nothing is written through it.
        source.execute("PRAGMA writable_schema = ON")
    except sqlite3.Error:
        return Recovered(damaged, unreadable_rows=1)
    source.text_factory = lenient_decode
    unreadable = 0
    try:
        rows: dict[str, list[dict[str, object]]] = {}
        for table in _TABLES:
            # The newest message of each conversation bounds the message ids to look for
            # when the messages table cannot say where it ends.
            known = [r.get("active_leaf_id") for r in rows.get("conversations", [])]
            hint = max((k for k in known if isinstance(k, int)), default=0)
            rows[table], lost = _read_table(source, table, hint if table == "messages" else 0)
            unreadable += lost
    finally:
        source.close()
        if readable != damaged:
            readable.unlink(missing_ok=True)
    conn = connect(target, busy_timeout_s=5.0)
    try:
        with transaction(conn):
            conn.execute("PRAGMA defer_foreign_keys = ON")
            _write_rows(conn, rows)
            _repair_links(conn)
            conversations = conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
            messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    finally:
        conn.close()
    return Recovered(damaged, conversations, messages, unreadable)


def _with_header(damaged: Path) -> Path:
    """`damaged` itself, or, when its 100-byte header was wiped (the first page is where a
    torn write lands), a copy with a header rebuilt from what this app always writes: 4 KiB
    pages, UTF-8, WAL. The pages behind it are then readable again."""
    with damaged.open("rb") as file:
        head = file.read(100)
    if head.startswith(_MAGIC) or len(head) < 100:
        return damaged
    size = damaged.stat().st_size
    page = 4096
    header = bytearray(head)
    header[0:16] = _MAGIC
    header[16:18] = page.to_bytes(2, "big")
    header[18:20] = b"\x02\x02"  # WAL
    header[20:24] = bytes([0, 64, 32, 32])
    header[28:32] = (size // page).to_bytes(4, "big")
    header[32:40] = bytes(8)  # no free-list: its pages read as unused
    header[40:44] = (1).to_bytes(4, "big")  # schema cookie
    header[44:48] = (4).to_bytes(4, "big")  # schema format
    header[56:60] = (1).to_bytes(4, "big")  # UTF-8
    header[92:100] = header[24:28] + (3045000).to_bytes(4, "big")
    copy = damaged.with_name(damaged.name + ".header-rebuilt")
    with damaged.open("rb") as source, copy.open("wb") as out:
        source.seek(100)
        out.write(bytes(header))
        while chunk := source.read(1 << 20):
            out.write(chunk)
    log.warning("salvage: %s had no valid header; reading through a rebuilt one", damaged.name)
    return copy


def _read_table(conn: sqlite3.Connection, table: str, hint: int = 0,
                ) -> tuple[list[dict[str, object]], int]:
    """The readable rows of `table` and how many could not be read. `hint`: an id known to
    have existed, for when the table cannot tell its own end."""
    try:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    except sqlite3.DatabaseError:
        return [], 1  # the schema itself is unreadable
    if not columns:
        return [], 0
    select = f"SELECT rowid AS _rowid, {', '.join(columns)} FROM {table}"
    try:
        return [dict(zip(["_rowid", *columns], r, strict=True))
                for r in conn.execute(select)], 0
    except sqlite3.DatabaseError as exc:
        log.warning("salvage: %s cannot be scanned (%s); reading row by row", table, exc)
    top = _largest_rowid(conn, table)
    if top == PROBE_LIMIT and hint:
        top = hint + PROBE_GAP  # rows past the newest referenced one are rare
    found: list[dict[str, object]] = []
    failed: list[int] = []
    last_found = 0
    for rowid in range(1, top + 1):
        if rowid > max(last_found, hint) + PROBE_GAP:
            break  # the end of the table is unknown: stop well past the last row found
        try:
            row = conn.execute(f"{select} WHERE rowid = ?", (rowid,)).fetchone()
        except sqlite3.DatabaseError:
            failed.append(rowid)
            continue
        if row is not None:
            found.append(dict(zip(["_rowid", *columns], row, strict=True)))
            last_found = rowid
    # Failures past the last row found are ids never used, unless the table's end is known.
    lost = sum(1 for r in failed if r <= max(last_found, hint))
    counted = _count(conn, table)  # an index may still know how many rows there were
    return found, max(lost, (counted or 0) - len(found))


def _count(conn: sqlite3.Connection, table: str) -> int | None:
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.DatabaseError:
        return None


def _largest_rowid(conn: sqlite3.Connection, table: str) -> int:
    for sql in (f"SELECT max(rowid) FROM {table}",
                "SELECT seq FROM sqlite_sequence WHERE name = ?"):
        try:
            args = (table,) if "?" in sql else ()
            row = conn.execute(sql, args).fetchone()
        except sqlite3.DatabaseError:
            continue
        if row is not None and isinstance(row[0], int):
            return min(row[0], PROBE_LIMIT)
    return PROBE_LIMIT


def _write_rows(conn: sqlite3.Connection, rows: dict[str, list[dict[str, object]]]) -> None:
    for table in _TABLES:
        wanted = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for row in rows[table]:
            values = {k: v for k, v in row.items() if k in wanted and k != "_rowid"}
            values.setdefault("id", row["_rowid"])
            for name in ("error", "finish_reason"):  # a server's words: kept without keys
                if isinstance(values.get(name), str):
                    values[name] = server_text(values[name])
            names = ", ".join(values)
            try:
                conn.execute(f"INSERT OR IGNORE INTO {table} ({names}) VALUES "
                             f"({', '.join('?' * len(values))})", list(values.values()))
            except sqlite3.IntegrityError as exc:  # NOT NULL lost with its page: not a row
                log.warning("salvage: %s row %s left out: %s", table, row["_rowid"], exc)


def _repair_links(conn: sqlite3.Connection) -> None:
    """Messages keep their words even when what they pointed at was lost."""
    orphans = conn.execute(
        "SELECT count(*) FROM messages WHERE conversation_id NOT IN "
        "(SELECT id FROM conversations)").fetchone()[0]
    if orphans:
        now = time.time()
        cursor = conn.execute(
            "INSERT INTO conversations (uid, title, created_at, updated_at, extra) "
            "VALUES (lower(hex(randomblob(16))), 'Recovered messages', ?, ?, '{}')",
            (now, now))
        conn.execute("UPDATE messages SET conversation_id = ? WHERE conversation_id NOT IN "
                     "(SELECT id FROM conversations)", (cursor.lastrowid,))
    conn.execute("UPDATE messages SET parent_id = NULL WHERE parent_id IS NOT NULL AND "
                 "parent_id NOT IN (SELECT id FROM messages m WHERE m.conversation_id = "
                 "messages.conversation_id)")
    conn.execute("DELETE FROM attachments WHERE message_id NOT IN (SELECT id FROM messages)")
    conn.execute("UPDATE conversations SET active_leaf_id = NULL WHERE active_leaf_id NOT IN "
                 "(SELECT id FROM messages m WHERE m.conversation_id = conversations.id)")
