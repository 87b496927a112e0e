-- A history written by schema version 1 (the first shape of core/store.py: linear chats,
-- no reasoning, usage, uid, active leaf or soft delete). Kept frozen: the migration tests
-- build a database from it and open it with the current Store.
PRAGMA user_version = 1;

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

INSERT INTO conversations (id, title, model, created_at, updated_at) VALUES
    (1, 'Sourdough starter', 'gpt-4o-mini', 1700000000.0, 1700000300.0),
    (2, 'Café au lait', 'llama-3.1-8b', 1700100000.0, 1700100200.0),
    (3, 'Cut off by a crash', 'gpt-4o-mini', 1700200000.0, 1700200100.0);

INSERT INTO messages (id, conversation_id, parent_id, role, content, state, model, created_at)
VALUES
    (1, 1, NULL, 'user', 'How do I feed a sourdough starter?', 'complete', NULL, 1700000000.0),
    (2, 1, 1, 'assistant', 'Discard half, then add equal weights of flour and water.',
        'complete', 'gpt-4o-mini', 1700000100.0),
    (3, 1, 2, 'user', 'And how often?', 'complete', NULL, 1700000200.0),
    (4, 1, 3, 'assistant', 'Daily at room temperature; weekly if it lives in the fridge.',
        'complete', 'gpt-4o-mini', 1700000300.0),
    (5, 2, NULL, 'user', 'Is café au lait the same as a latte?', 'complete', NULL,
        1700100000.0),
    (6, 2, 5, 'assistant', 'Not quite: café au lait uses brewed coffee, a latte uses espresso.',
        'stopped', 'llama-3.1-8b', 1700100200.0),
    (7, 3, NULL, 'user', 'Tell me a long story about a lighthouse.', 'complete', NULL,
        1700200000.0),
    (8, 3, 7, 'assistant', 'Once upon a time, a lighthouse keeper', 'streaming',
        'gpt-4o-mini', 1700200100.0);
