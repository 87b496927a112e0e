"""The history database's shape over time: schema versions, migrations, backups, search index.

A database records its version in `PRAGMA user_version`. `MIGRATIONS[n]` turns version n into
n + 1; a new file starts at 0 and runs all of them, so a fresh database and an upgraded one
have exactly the same shape. Before an existing file is migrated it is copied aside with
sqlite's backup API (a plain file copy would miss what is still in the -wal file).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from desktop_chat.core.logs import redact_secrets

log = logging.getLogger("desktop_chat.store")

KEEP_BACKUPS = 3
FTS_TABLE = "message_fts"

V1_SCHEMA = """
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    model TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'complete',
    model TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX messages_conversation ON messages(conversation_id);
"""

# v2: identity for export/import (uid), branches (active leaf), undoable delete, free-form
# settings, reasoning, usage and outcome details per reply. Columns are added, never rebuilt,
# so a large history upgrades in one quick pass.
V2_CHANGES = """
ALTER TABLE conversations ADD COLUMN uid TEXT;
UPDATE conversations SET uid = lower(hex(randomblob(16)));
CREATE UNIQUE INDEX conversations_uid ON conversations(uid);
ALTER TABLE conversations ADD COLUMN active_leaf_id INTEGER;
ALTER TABLE conversations ADD COLUMN deleted_at REAL;
ALTER TABLE conversations ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
UPDATE conversations SET active_leaf_id =
    (SELECT max(m.id) FROM messages m WHERE m.conversation_id = conversations.id);
CREATE INDEX conversations_recent ON conversations(updated_at) WHERE deleted_at IS NULL;
ALTER TABLE messages ADD COLUMN reasoning TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN finish_reason TEXT;
ALTER TABLE messages ADD COLUMN error TEXT;
ALTER TABLE messages ADD COLUMN prompt_tokens INTEGER;
ALTER TABLE messages ADD COLUMN completion_tokens INTEGER;
ALTER TABLE messages ADD COLUMN total_tokens INTEGER;
ALTER TABLE messages ADD COLUMN updated_at REAL;
UPDATE messages SET updated_at = created_at;
DROP INDEX messages_conversation;
CREATE INDEX messages_conversation ON messages(conversation_id, parent_id);
CREATE INDEX messages_parent ON messages(parent_id);
CREATE INDEX messages_streaming ON messages(state) WHERE state = 'streaming';
"""

# v3: images attached to (user) messages, kept in the database so the history is one file that
# owns its copies; and whether a reply's usage was estimated offline rather than reported.
V3_CHANGES = """
CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    mime TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    data BLOB NOT NULL,
    UNIQUE (message_id, position)
);
ALTER TABLE messages ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;
"""

# External-content FTS5: the text lives once, in messages; triggers keep the index in step,
# also for rows removed by ON DELETE CASCADE.
FTS_SCHEMA = f"""
CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(
    content, content='messages', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO {FTS_TABLE}(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO {FTS_TABLE}(rowid, content) VALUES (new.id, new.content);
END;
INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild');
"""


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Statement by statement: `executescript` would COMMIT the caller's transaction."""
    for statement in _statements(script):
        conn.execute(statement)


def _statements(script: str) -> list[str]:
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return [s for s in statements if s]


def _create_v1(conn: sqlite3.Connection) -> None:
    _run_script(conn, V1_SCHEMA)


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    _run_script(conn, V2_CHANGES)
    ensure_search_index(conn)


def _v2_to_v3(conn: sqlite3.Connection) -> None:
    _run_script(conn, V3_CHANGES)


def _v3_to_v4(conn: sqlite3.Connection) -> None:
    """v4: no key in what servers said. Builds before v4 stored a reply's error (and finish
    reason) as the server sent it, and some servers quote the API key back ("Incorrect API key
    provided: sk-…"); redact them as the logs do (the keys this process knows, which the app
    gathers before opening an old history, and every well-known key shape). The old text is
    overwritten on disk (secure_delete), not just unlinked; the backup taken before the
    migration keeps it, like everything else of the old file."""
    rows = conn.execute("SELECT id, error, finish_reason FROM messages "
                        "WHERE error IS NOT NULL OR finish_reason IS NOT NULL").fetchall()
    changed = []
    for row_id, error, finish_reason in rows:
        cleaned = [redact_secrets(v) if isinstance(v, str) else v for v in (error, finish_reason)]
        if cleaned != [error, finish_reason]:
            changed.append((*cleaned, row_id))
    if not changed:
        return
    secure = conn.execute("PRAGMA secure_delete").fetchone()[0]
    conn.execute("PRAGMA secure_delete = ON")
    try:
        conn.executemany("UPDATE messages SET error = ?, finish_reason = ? WHERE id = ?", changed)
    finally:
        conn.execute(f"PRAGMA secure_delete = {int(secure)}")
    log.info("removed keys from %d stored error message(s)", len(changed))


def _add_tool_calls(conn: sqlite3.Connection) -> None:
    """Tool calls a reply made and their results (JSON, core/history/tool_calls.py); the
    reply's text stays whole in `content`. Added only if missing, so this step stands alone
    whatever other steps run before or after it."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    if "tool_calls" not in columns:
        conn.execute("ALTER TABLE messages ADD COLUMN tool_calls TEXT NOT NULL DEFAULT '[]'")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _create_v1, _v1_to_v2, _v2_to_v3, _v3_to_v4, _add_tool_calls]
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def needs_migration(path: Path) -> bool:
    """Whether opening the history at `path` will migrate it (a file from an older version);
    False for a missing file or one that cannot be read (opening it will say why)."""
    if not path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            return 0 < user_version(conn) < SCHEMA_VERSION
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def migrate(conn: sqlite3.Connection, path: Path, target: int = SCHEMA_VERSION) -> int:
    """Bring the database to `target`; returns the version it had. One transaction per step,
    and each step re-reads the version under the write lock, so two processes opening an old
    file at once migrate it once."""
    found = user_version(conn)
    if found >= target:  # the usual case: no write lock needed just to open
        return found
    if found > 0:
        backup(conn, path, found)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = user_version(conn)
            if version >= target:
                conn.execute("COMMIT")
                # what a migration rewrote (keys taken out of errors, say) replaces the old
                # pages in the main file now, not at some later checkpoint
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                return found
            log.info("migrating %s from schema %d to %d", path.name, version, version + 1)
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # some errors (disk full, I/O) already rolled back
                conn.execute("ROLLBACK")
            raise


# -- backups -----------------------------------------------------------------------------------

_BACKUP_NAME = re.compile(r"\.v(\d+)-(\d{8}T\d{12})Z\.bak$")


def backup(conn: sqlite3.Connection, path: Path, version: int) -> Path:
    """Copy the live database (WAL content included) to `<name>.v<version>-<UTC time>.bak`,
    then keep only the newest `KEEP_BACKUPS` copies."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    target = path.with_name(f"{path.name}.v{version}-{stamp}Z.bak")
    partial = target.with_name(target.name + ".partial")
    dest = sqlite3.connect(partial)
    try:
        conn.backup(dest)
    finally:
        dest.close()
    os.replace(partial, target)  # a crash mid-copy never leaves a half file named .bak
    log.info("backed up %s before migrating: %s", path.name, target.name)
    prune_backups(path)
    return target


def backups(path: Path) -> list[Path]:
    """Backups of `path`, oldest first."""
    found = []
    for candidate in path.parent.glob(f"{path.name}.v*.bak"):
        match = _BACKUP_NAME.search(candidate.name)
        if match and candidate.name.startswith(path.name):
            found.append((match.group(2), candidate))
    return [p for _, p in sorted(found)]


def prune_backups(path: Path, keep: int = KEEP_BACKUPS) -> None:
    for old in backups(path)[:-keep]:
        try:
            old.unlink()
        except OSError as exc:  # a copy we could not remove is harmless
            log.warning("could not remove old backup %s: %s", old.name, exc)


# -- full-text search --------------------------------------------------------------------------


def fts5_available(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp._fts5_probe USING fts5(x)")
    except sqlite3.OperationalError:
        return False
    conn.execute("DROP TABLE temp._fts5_probe")
    return True


def has_search_index(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (FTS_TABLE,)
    ).fetchone()
    return row is not None


def ensure_search_index(conn: sqlite3.Connection) -> bool:
    """Create and fill the FTS5 index if this sqlite has FTS5; searches fall back to LIKE
    otherwise. Returns whether the index exists afterwards."""
    if has_search_index(conn):
        return True
    if not fts5_available(conn):
        log.warning("this sqlite has no FTS5; search will scan messages (slower)")
        return False
    _run_script(conn, FTS_SCHEMA)
    return True
