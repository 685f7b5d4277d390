"""Read models as projections: the view stores' contract, exactly-once folding, rebuild == live."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import DomainEventProtocol

from suuupra_commerce import AddItem, CreateCart, Money, ReceiveStock, RegisterItem
from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.projections import (
    Doc,
    InMemoryViewStore,
    Projection,
    ViewQuery,
    ViewStore,
    instant,
)
from suuupra_commerce.system import Commerce, Settings
from suuupra_commerce.testing.sagas import SagaTestKit


class Notes(Projection):
    """A projection of the tests' own: one document per key, three indexed fields."""

    name = "notes"
    indexes = ("colour", "at", "owner")

    def key(self, event: DomainEventProtocol[UUID]) -> str | None:
        return None

    def fold(self, doc: Doc | None, event: DomainEventProtocol[UUID]) -> Doc | None:
        return doc


class NotesV2(Notes):
    version = 2


STORE_KINDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def make_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> ViewStore:
    if kind == "sqlite":
        from suuupra_commerce.adapters.sqlite_views import SQLiteViewStore

        return SQLiteViewStore(tmp_path / "views.sqlite")
    if kind == "postgres":
        from suuupra_commerce.adapters.postgres_views import PostgresViewStore

        return PostgresViewStore(request.getfixturevalue("postgres_schema"), pool_size=2)
    return InMemoryViewStore()


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ViewStore]:
    built = make_store(request.param, tmp_path, request)
    built.prepare(Notes())
    try:
        yield built
    finally:
        built.close()


def note(n: int, colour: str | None, owner: str = "ann") -> Doc:
    at = None if colour is None else f"2026-01-{n:02d}T00:00:00.000000+00:00"
    return {"n": n, "colour": colour, "at": at, "owner": owner, "weight": n * 10}


def fill(store: ViewStore) -> None:
    docs: dict[str, Doc | None] = {
        "k1": note(1, "red"),
        "k2": note(2, "blue", "bob"),
        "k3": note(3, "red", "bob"),
        "k4": note(4, None),
        "k5": note(5, "blue"),
    }
    assert store.commit("notes", docs, expected=0, position=7)


def ns(docs: list[Doc]) -> list[int]:
    return [d["n"] for d in docs]


def test_position_starts_at_zero_and_moves_only_by_compare_and_set(store: ViewStore) -> None:
    assert store.position("notes") == 0
    fill(store)
    assert store.position("notes") == 7
    assert not store.commit("notes", {"k1": None, "k9": note(9, "red")}, expected=0, position=9)
    assert store.position("notes") == 7
    assert sorted(store.get_many("notes", ["k1", "k9", "nope"])) == ["k1"]


def test_documents_round_trip_exactly_when_stored(store: ViewStore) -> None:
    doc = {
        "money": Money("0.10", "USD").to_dict(),
        "nested": {"list": [1, 2, [3]], "flag": True, "none": None},
        "text": "naïve \u2603 'quoted' \"double\"; DROP TABLE x; --",
        "colour": "red",
        "at": None,
        "owner": None,
        "big": 2**62,
    }
    assert store.commit("notes", {"k": doc}, expected=0, position=1)
    assert store.get_many("notes", ["k"]) == {"k": doc}


def test_find_filters_orders_and_pages_by_indexed_fields(store: ViewStore) -> None:
    fill(store)
    assert ns(store.find("notes", ViewQuery())) == [1, 2, 3, 4, 5]  # by key
    assert ns(store.find("notes", ViewQuery(equal={"colour": "red"}))) == [1, 3]
    assert ns(store.find("notes", ViewQuery(equal={"colour": "red", "owner": "bob"}))) == [3]
    by_time = ViewQuery(order_by="at", descending=True)
    assert ns(store.find("notes", by_time)) == [5, 3, 2, 1, 4]  # None last
    assert ns(store.find("notes", ViewQuery(order_by="at"))) == [1, 2, 3, 5, 4]
    until = ViewQuery(at_most={"at": "2026-01-03T00:00:00.000000+00:00"}, order_by="at")
    assert ns(store.find("notes", until)) == [1, 2, 3]
    page = ViewQuery(order_by="at", limit=2, offset=1)
    assert ns(store.find("notes", page)) == [2, 3]
    assert ns(store.find("notes", ViewQuery(offset=4))) == [5]
    assert store.find("notes", ViewQuery(limit=0)) == []


def test_tally_counts_and_sums_per_group(store: ViewStore) -> None:
    fill(store)
    by_colour = {t.group: (t.count, t.sums) for t in store.tally("notes", ("colour",), ("weight",))}
    assert by_colour == {("blue",): (2, (70,)), ("red",): (2, (40,)), (None,): (1, (40,))}
    pairs = [(t.group, t.count) for t in store.tally("notes", ("colour", "owner"))]
    assert pairs == [
        (("blue", "ann"), 1),
        (("blue", "bob"), 1),
        (("red", "ann"), 1),
        (("red", "bob"), 1),
        ((None, "ann"), 1),
    ]
    assert [(t.group, t.count) for t in store.tally("notes", ())] == [((), 5)]


def test_deletes_and_reset_forget_documents(store: ViewStore) -> None:
    fill(store)
    assert store.commit("notes", {"k1": None, "k2": note(2, "green")}, expected=7, position=8)
    assert ns(store.find("notes", ViewQuery())) == [2, 3, 4, 5]
    assert ns(store.find("notes", ViewQuery(equal={"colour": "green"}))) == [2]
    store.reset("notes")
    assert store.position("notes") == 0
    assert store.find("notes", ViewQuery()) == []


def test_refuses_queries_and_documents_the_projection_cannot_index(store: ViewStore) -> None:
    fill(store)
    with pytest.raises(ValueError, match="does not index"):
        store.find("notes", ViewQuery(equal={"weight": "10"}))
    with pytest.raises(ValueError, match="does not index"):
        store.tally("notes", ("weight",))
    with pytest.raises(TypeError, match="must be a string"):
        store.commit("notes", {"k6": {"colour": 6}}, expected=7, position=8)
    assert store.position("notes") == 7
    assert store.get_many("notes", ["k6"]) == {}


@pytest.mark.parametrize("name", ["Notes", "notes; drop table x", "", "a" * 41, "1notes"])
def test_refuses_projection_names_that_are_not_plain_identifiers(
    store: ViewStore, name: str
) -> None:
    bad = type("Bad", (Notes,), {"name": name})
    with pytest.raises(ValueError, match="lower snake case"):
        store.prepare(bad())


def test_starts_a_projection_again_when_its_version_changes(store: ViewStore) -> None:
    fill(store)
    store.prepare(Notes())  # the same version keeps everything
    assert store.position("notes") == 7
    store.prepare(NotesV2())
    assert store.position("notes") == 0
    assert store.find("notes", ViewQuery()) == []


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_exactly_one_of_two_processes_commits_the_same_batch(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "postgres":
        settings = request.getfixturevalue("postgres_schema")
        from suuupra_commerce.adapters.postgres_views import PostgresViewStore

        stores: list[ViewStore] = [PostgresViewStore(settings, pool_size=1) for _ in range(2)]
    else:
        from suuupra_commerce.adapters.sqlite_views import SQLiteViewStore

        stores = [SQLiteViewStore(tmp_path / "views.sqlite") for _ in range(2)]
    try:
        for s in stores:
            s.prepare(Notes())
        for round_ in range(50):
            barrier = threading.Barrier(2)
            results: list[bool] = []

            def commit(
                s: ViewStore,
                who: int,
                at: int = round_,
                barrier: threading.Barrier = barrier,
                results: list[bool] = results,
            ) -> None:
                barrier.wait()
                doc = note(1, "red", owner=f"p{who}")
                results.append(s.commit("notes", {"k": doc}, expected=at, position=at + 1))

            threads = [threading.Thread(target=commit, args=(s, i)) for i, s in enumerate(stores)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(results) == [False, True]
        assert stores[0].position("notes") == 50
    finally:
        for s in stores:
            s.close()


# --- the services' projections ---------------------------------------------------------------


def snapshot(commerce: Commerce) -> dict[str, list[Doc]]:
    """Every document of every projection of every service."""
    views: dict[str, list[Doc]] = {}
    for app in (commerce.inventory, commerce.orders, commerce.carts, commerce.sagas):
        app.catch_up()
        for projection in app.projections:
            views[projection.name] = app.views.find(projection.name, ViewQuery())
    return views


def workload(kit: SagaTestKit) -> None:
    """Stock, carts, orders that complete and one that compensates, and a sweep."""
    kit.stock("MUG-1", 10, "9.50")
    kit.stock("TEE-M", 3, "19.99")
    commerce = kit.commerce
    for n in range(3):
        cart = commerce.carts.create(CreateCart(customer_id=f"c{n}", currency="USD"))
        commerce.carts.add_item(AddItem(cart_id=cart, sku="MUG-1", quantity=n + 1))
    kit.place("o-1", {"MUG-1": 2, "TEE-M": 1})
    kit.place("o-2", {"TEE-M": 2}, customer="bob")
    declined = kit.place("o-3", {"MUG-1": 1}, customer="carol")
    kit.payments.decline(order_id=str(declined))
    kit.settle()


@pytest.fixture
def kit(settings: Settings) -> Iterator[SagaTestKit]:
    built = SagaTestKit(settings, price_book=InMemoryPriceBook())
    try:
        yield built
    finally:
        built.close()


def test_a_rebuilt_view_equals_the_live_one_on_every_backend(kit: SagaTestKit) -> None:
    workload(kit)
    live = snapshot(kit.commerce)
    assert len(live["orders"]) == 3
    assert len(live["sagas"]) == 3
    views = kit.commerce.orders.views
    at = views.position("orders")
    lost = live["orders"][0]["order_id"]
    assert views.commit("orders", {lost: None}, expected=at, position=at)  # damage the view
    assert snapshot(kit.commerce) != live
    told: dict[str, list[tuple[int, int]]] = {}

    def progress(service: str, done: int, total: int) -> None:
        told.setdefault(service, []).append((done, total))

    folded = kit.commerce.rebuild_views(progress)
    assert snapshot(kit.commerce) == live
    for service, calls in told.items():
        assert calls[-1][0] == calls[-1][1], service  # ends at the log's last id
        assert folded[service] > 0
    assert set(told) == {"Inventory", "Orders", "Carts", "Sagas"}


def test_views_kept_in_a_store_equal_a_fresh_fold_in_memory(
    durable: dict[str, str], tmp_path: Path
) -> None:
    kit = SagaTestKit(Settings.from_env(durable), price_book=InMemoryPriceBook())
    try:
        workload(kit)
        kept = snapshot(kit.commerce)
    finally:
        kit.close()
    fresh = Settings.from_env({**durable, "COMMERCE_VIEWS": "memory"})
    with Commerce(fresh, price_book=InMemoryPriceBook()) as again:
        assert snapshot(again) == kept


def test_a_restarted_process_resumes_its_views_where_they_stopped(
    durable: dict[str, str],
) -> None:
    settings = Settings.from_env(durable)
    register = RegisterItem(
        sku="MUG-1", product_id="mug", name="Mug", unit_price=Money("9.50", "USD")
    )
    with Commerce(settings, price_book=InMemoryPriceBook()) as first:
        first.inventory.register(register)
        assert first.inventory.item("MUG-1").on_hand == 0
    with Commerce(settings, price_book=InMemoryPriceBook()) as second:
        assert second.inventory.views.position("inventory_items") > 0
        assert second.inventory.catch_up() == 0  # nothing folded twice


def test_processes_sharing_a_view_store_fold_each_event_once(durable: dict[str, str]) -> None:
    settings = Settings.from_env(durable)
    book = InMemoryPriceBook()
    book.set_price("MUG-1", "Mug", Money("9.50", "USD"))
    first = Commerce(settings, price_book=book)
    second = Commerce(settings, price_book=book)
    try:
        first.inventory.register(
            RegisterItem(sku="MUG-1", product_id="mug", name="Mug", unit_price=Money("9.50", "USD"))
        )
        failures: list[BaseException] = []

        def work(commerce: Commerce, runs: int) -> None:
            try:
                for _ in range(runs):
                    # each process writes, and folds what both wrote
                    commerce.inventory.receive(ReceiveStock(sku="MUG-1", quantity=1))
                    commerce.inventory.item("MUG-1")
            except BaseException as error:  # noqa: BLE001 - asserted below
                failures.append(error)

        threads = [
            threading.Thread(target=work, args=(c, 30)) for c in (first, second, first, second)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        assert first.inventory.item("MUG-1").on_hand == 120
        assert second.inventory.item("MUG-1").on_hand == 120
    finally:
        first.close()
        second.close()


def test_instants_sort_as_times_do() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    moments = [
        datetime(2026, 1, 1, 12, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 30, tzinfo=timezone(timedelta(hours=1))),  # 11:30 UTC
        datetime(2026, 1, 1, 12, 0, 0, 1, tzinfo=UTC),
    ]
    assert sorted(moments) == sorted(moments, key=instant)
    with pytest.raises(ValueError, match="timezone-aware"):
        instant(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test


# --- folding by workers (COMMERCE_VIEWS_FOLD=worker) ----------------------------------------


MUG = RegisterItem(sku="MUG-1", product_id="mug", name="Mug", unit_price=Money("9.50", "USD"))


def test_with_worker_folding_queries_read_what_the_workers_folded(
    durable: dict[str, str],
) -> None:
    reader = Settings.from_env({**durable, "COMMERCE_VIEWS_FOLD": "worker"})
    with (
        Commerce(reader, price_book=InMemoryPriceBook()) as host,
        Commerce(Settings.from_env(durable), price_book=InMemoryPriceBook()) as folder,
    ):
        host.inventory.register(MUG)
        assert host.inventory.items() == []  # not folded yet: no read-your-writes in this mode
        assert folder.inventory.catch_up() > 0  # a projection worker folds...
        assert [i.sku for i in host.inventory.items()] == ["MUG-1"]  # ...and readers see it


def test_with_worker_folding_sweeps_still_fold_before_acting(durable: dict[str, str]) -> None:
    from datetime import timedelta

    from suuupra_commerce import OrderLineRequest, PlaceOrder
    from suuupra_commerce.testing import FakeClock

    clock = FakeClock()
    book = InMemoryPriceBook()
    book.set_price("MUG-1", "Mug", Money("9.50", "USD"))
    settings = Settings.from_env({**durable, "COMMERCE_VIEWS_FOLD": "worker"})
    with Commerce(settings, price_book=book, clock=clock) as host:
        host.inventory.register(MUG.model_copy(update={"initial_quantity": 2}))
        host.orders.place(
            PlaceOrder(
                idempotency_key="k-1",
                customer_id="ann",
                currency="USD",
                lines=[OrderLineRequest(sku="MUG-1", quantity=2)],
            )
        )
        clock.advance(timedelta(hours=1))
        assert host.inventory.expire_reservations() == 1  # no worker ran: the sweep folded


def test_the_projections_role_folds_as_a_process_of_its_own(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {
        "COMMERCE_PERSISTENCE": "sqlite",
        "COMMERCE_SQLITE_DIR": str(tmp_path / "store"),
        "COMMERCE_VIEWS_FOLD": "worker",
        "COMMERCE_VIEWS_POLL_SECONDS": "0.05",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "suuupra_commerce.cli", "worker", "--role", "projections"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Commerce(Settings.from_env(env), price_book=InMemoryPriceBook()) as host:
            host.inventory.register(MUG)
            deadline = time.monotonic() + 30
            while not host.inventory.items():
                assert time.monotonic() < deadline, "the projection worker never folded"
                time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "projections folding into sqlite" in out
    assert "projections stopped" in out


@pytest.mark.postgres
def test_readers_may_query_views_through_a_read_only_connection_as_to_a_replica(
    postgres_schema: dict[str, str],
) -> None:
    """VIEWS_POSTGRES_* point a reader's view store elsewhere; it needs no write there."""
    import uuid

    from conftest import _postgres_connect

    schema = postgres_schema["POSTGRES_SCHEMA"]
    with Commerce(
        Settings.from_env({"COMMERCE_PERSISTENCE": "postgres", **postgres_schema}),
        price_book=InMemoryPriceBook(),
    ) as writer:
        writer.inventory.register(MUG)
        writer.inventory.items()  # folded into the primary's tables
        role = f"reader_{uuid.uuid4().hex[:10]}"
        admin: Any = _postgres_connect()
        try:
            admin.execute(f'CREATE ROLE "{role}" LOGIN')
            admin.execute(f'ALTER ROLE "{role}" SET default_transaction_read_only = on')
            admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
            admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
            reader_env = {
                "COMMERCE_PERSISTENCE": "postgres",
                **postgres_schema,
                "COMMERCE_VIEWS_FOLD": "worker",
                "VIEWS_POSTGRES_USER": role,
            }
            with Commerce(Settings.from_env(reader_env), price_book=InMemoryPriceBook()) as reader:
                assert [i.sku for i in reader.inventory.items()] == ["MUG-1"]
                assert reader.orders.count_by_status() == {}
        finally:
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')
            admin.close()
