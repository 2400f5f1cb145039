"""`street-vision run` on the demo with its store in PostgreSQL: the crowd ticket opens, the process is
SIGKILLed while it is open, a second run restores the camera from the same PostgreSQL store and closes
the ticket; events, transitions, camera state and outbox are in PostgreSQL, and the password (given as
``${PGPASSWORD}`` in storage.url) is never printed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vision.secrets import SecretUrl
from vision.store.postgres import PostgresStore

from .conftest import start_run
from .dispatch_support import SECRET, Receiver, wait_for
from .pg_support import PASSWORD, PostgresServer
from .test_restart import demo_config, fast


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = Receiver(tmp_path / "receiver.sqlite").start()
    yield server
    server.stop()


def postgres_config(tmp_path: Path, webhook: str, store_url: str) -> Path:
    """test_restart's demo (the plaza clip in real time, with dispatch) with its store at ``store_url``."""
    config = demo_config(tmp_path, webhook)
    data_dir = f"data_dir: {tmp_path / 'data'}"
    config.write_text(config.read_text().replace(data_dir, f"{data_dir}\n  url: {store_url}"))
    return config


def test_run_on_postgres_opens_survives_a_kill_and_closes_the_crowd_ticket(
    tmp_path: Path, postgres: PostgresServer, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)  # the runs' environment: their config refers to it
    database = postgres.database()
    config = postgres_config(tmp_path, receiver.url, postgres.url(database, password="${PGPASSWORD}"))
    assert (
        f"url: postgresql://vision:${{PGPASSWORD}}@127.0.0.1:{postgres.port}/{database}" in config.read_text()
    )
    log = tmp_path / "run.log"
    store = PostgresStore(SecretUrl(postgres.url(database)), run=False)
    try:
        first = start_run(config, log, {"HOOK_SECRET": SECRET})
        try:  # the crowd forms about 15 s into the clip
            wait_for(lambda: [t for t in receiver.tickets() if t[2] == "open"], "the crowd ticket", 90.0)
            time.sleep(1.0)
            assert first.poll() is None, log.read_text()[-3000:]
        finally:
            first.kill()
            first.wait(10)
        assert [(e.rule, e.state.value) for e in store.open_events("plaza")] == [("crowd", "open")]
        saved = store.snapshot("plaza")  # the camera's state, committed with the open
        opened_at = receiver.bodies()[0]["pts"]  # about 15 s; earlier when a loaded machine drops frames
        assert saved is not None and saved[0].state["pts"] >= opened_at > 0

        fast(config)  # the second run only has to restore and see the crowd leave
        second = start_run(config, log, {"HOOK_SECRET": SECRET})
        assert second.wait(180) == 0, log.read_text()[-3000:]
        text = log.read_text()
        assert "camera plaza: restored 1 open event(s) from the store" in text
        assert PASSWORD not in text and "vision:***@127.0.0.1" in text  # the store as the run reports it

        events = store.sql.execute("SELECT event_id, type, state, close_reason FROM events").fetchall()
        assert [e[1:] for e in events] == [("crowd", "resolved", "resolved")]
        kinds = [r[0] for r in store.sql.execute("SELECT kind FROM transitions ORDER BY seq")]
        assert kinds[0] == "open" and kinds[-1] == "close" and kinds.count("open") == 1, kinds
        assert store.outbox_counts().delivered == len(kinds) and store.outbox_counts().pending == 0
        runs = store.sql.execute("SELECT COUNT(*) FROM runs").fetchone()
        assert runs == (2,)
    finally:
        store.close()
    tickets, history = receiver.tickets(), receiver.history()
    assert len(tickets) == 1 and tickets[0][2] == "closed", (tickets, history)
    assert [h[3] for h in history] == kinds
