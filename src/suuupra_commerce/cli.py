"""The command line: ``suuupra-commerce demo | worker | sagas | projections | inventory | export``.

Settings come from the environment, as for :class:`~suuupra_commerce.system.Commerce`
(``COMMERCE_PERSISTENCE``, ``COMMERCE_MESSAGING``, ``COMMERCE_SQLITE_DIR``, eventsourcing's
``POSTGRES_*``, the ``REDIS_*`` keys).
Commands that need the host's ports (the saga worker) take ``--host module:function``,
a callable returning the keyword arguments of ``Commerce`` (``price_book``,
``payments``, ``shipping_provider``, ``notifier`` ...).

Expected failures (bad input, unknown ids, refused actions, missing settings) print one
line on stderr and exit with status 1 (2 for a malformed command line), never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO
from uuid import UUID

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.errors import CommerceError, InvalidInputError
from suuupra_commerce.orders.lifecycle import ORDER_LIFECYCLE, PAYMENT_LIFECYCLE
from suuupra_commerce.sagas.commands import CompensateSaga, ResolveSaga, RetrySagaStep, SkipSagaStep
from suuupra_commerce.sagas.domain import SagaStatus
from suuupra_commerce.sagas.orders import ORDER_CANCELLATION, ORDER_FULFILMENT
from suuupra_commerce.system import Commerce

__all__ = ["main"]

DIAGRAMS: dict[str, Callable[[], str]] = {
    "order-fulfilment": ORDER_FULFILMENT.to_mermaid,
    "order-cancellation": ORDER_CANCELLATION.to_mermaid,
    "order-lifecycle": ORDER_LIFECYCLE.to_mermaid,
    "payment-lifecycle": PAYMENT_LIFECYCLE.to_mermaid,
}


class UsageError(Exception):
    """The command line asks for something that cannot be done as asked."""


def _host(spec: str | None) -> dict[str, Any]:
    """The ``Commerce`` keyword arguments the ``--host`` callable returns."""
    if spec is None:
        return {"price_book": InMemoryPriceBook()}
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"--host takes module:function, not {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise UsageError(f"cannot load --host {spec}: {error}") from None
    ports = factory()
    if not isinstance(ports, Mapping):
        raise UsageError(f"--host {spec} must return a mapping of Commerce arguments")
    found = dict(ports)
    found.setdefault("price_book", InMemoryPriceBook())
    return found


def _commerce(args: argparse.Namespace) -> Commerce:
    return Commerce.from_env(None, **_host(getattr(args, "host", None)))


def _saga_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise InvalidInputError(f"not a saga id: {text!r}") from None


def _table(rows: Sequence[Sequence[object]], out: TextIO) -> None:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))
        out.write("\n")


# --- commands --------------------------------------------------------------------------------


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from suuupra_commerce import demo  # the demo pulls in the test kit's fakes: load on demand

    return demo.main(["--data-dir", args.data_dir] if args.data_dir else [])


def _worker(args: argparse.Namespace, out: TextIO) -> int:
    with _commerce(args) as commerce:
        sagas = args.role in ("sagas", "all")
        relays = args.role in ("relay", "all") and commerce.settings.messaging != "none"
        folding = args.role == "projections" or (
            args.role == "all" and commerce.settings.views_fold == "worker"
        )
        if args.role == "relay" and not relays:
            raise UsageError("--role relay needs a bus: set COMMERCE_MESSAGING")
        if args.once:
            if sagas:
                moved = commerce.engine.run_until_idle()
                out.write(f"moved {moved} messages; idle\n")
            if relays:
                read = sum(relay.run_until_caught_up() for relay in commerce.relays)
                out.write(f"relayed {read} notifications; caught up\n")
            if folding:
                apps = (commerce.inventory, commerce.orders, commerce.carts, commerce.sagas)
                folded = sum(app.catch_up() for app in apps)
                out.write(f"folded {folded} events into the read models; caught up\n")
            return 0
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        failures: list[BaseException] = []

        def guarded(run: Callable[[threading.Event], None]) -> Callable[[], None]:
            def guard() -> None:
                try:
                    run(stop)
                except BaseException as error:  # noqa: BLE001 - raised in the main thread
                    failures.append(error)
                    stop.set()  # one part failing stops the others: the process exits

            return guard

        running: list[threading.Thread] = []
        if relays:
            names = ", ".join(relay.name for relay in commerce.relays)
            out.write(f"relays running ({names}) to {commerce.settings.messaging}\n")
            running.append(threading.Thread(target=guarded(commerce.run_relays), name="relays"))
        if folding:
            out.write(f"projections folding into {commerce.settings.views_backend}\n")
            running.append(
                threading.Thread(target=guarded(commerce.run_projections), name="projections")
            )
        if sagas:
            worker = commerce.worker()
            partitions = commerce.engine.partitions
            out.write(f"saga worker running ({partitions} partitions)\n")
            running.append(threading.Thread(target=guarded(worker.run), name="sagas"))
        out.write("SIGINT or SIGTERM stops it\n")
        out.flush()
        for thread in running:
            thread.start()
        # The main thread only waits, so it is free to handle the signals.
        while any(thread.is_alive() for thread in running):
            stop.wait(0.5)
            if stop.is_set():
                break
        for thread in running:
            thread.join()
        if failures:
            raise failures[0]
        out.write("saga worker stopped\n" if sagas else "")
        out.write("relays stopped\n" if relays else "")
        out.write("projections stopped\n" if folding else "")
    return 0


def _sagas_list(args: argparse.Namespace, out: TextIO) -> int:
    status = SagaStatus(args.status) if args.status else None
    with _commerce(args) as commerce:
        sagas = commerce.sagas.list(status, args.definition, args.subject, args.limit)
    rows: list[Sequence[object]] = [("saga", "definition", "status", "step", "subject", "started")]
    rows.extend(
        (
            s.saga_id,
            f"{s.definition} v{s.version}",
            s.status.value,
            s.step,
            s.subject,
            f"{s.started_at:%Y-%m-%d %H:%M:%S}",
        )
        for s in sagas
    )
    _table(rows, out)
    return 0


def _sagas_show(args: argparse.Namespace, out: TextIO) -> int:
    with _commerce(args) as commerce:
        view = commerce.sagas.get(_saga_id(args.saga_id))
    out.write(view.format_timeline() + "\n")
    if view.stuck_reason:
        out.write(f"  stuck: {view.stuck_reason}\n")
    return 0


def _sagas_stats(args: argparse.Namespace, out: TextIO) -> int:
    with _commerce(args) as commerce:
        stats = commerce.sagas.statistics()
    out.write(f"sagas: {stats.total}\n")
    for definition, counts in stats.by_definition.items():
        listed = ", ".join(f"{status.value} {n}" for status, n in sorted(counts.items()))
        out.write(f"  {definition}: {listed}\n")
    out.write(
        f"retries {stats.retries}, timeouts {stats.timeouts}, "
        f"compensations {stats.compensations}, operator actions {stats.operator_actions}\n"
    )
    return 0


def _sagas_act(args: argparse.Namespace, out: TextIO) -> int:
    saga_id = _saga_id(args.saga_id)
    with _commerce(args) as commerce:
        sagas = commerce.sagas
        if args.action == "retry":
            sagas.retry_step(RetrySagaStep(saga_id=saga_id, by=args.by, reason=args.reason))
        elif args.action == "skip":
            sagas.skip_step(SkipSagaStep(saga_id=saga_id, by=args.by, reason=args.reason))
        elif args.action == "compensate":
            sagas.compensate(CompensateSaga(saga_id=saga_id, by=args.by, reason=args.reason))
        else:
            sagas.resolve(
                ResolveSaga(saga_id=saga_id, outcome=args.outcome, by=args.by, reason=args.reason)
            )
        view = sagas.get(saga_id)
    out.write(f"saga {saga_id}: {view.status.value} at {view.step}\n")
    return 0


class _ProgressBar:
    """A one-line progress bar with the rate, redrawn in place on ``err`` (a terminal or a log)."""

    def __init__(self, err: TextIO, width: int = 30) -> None:
        self.err = err
        self.width = width
        self.started = time.monotonic()
        self.service = ""
        self.folded = 0
        self._last = 0

    def __call__(self, service: str, done: int, total: int) -> None:
        if service != self.service:
            if self.service:
                self.err.write("\n")
            self.service, self._last = service, 0
        self.folded += done - self._last
        self._last = done
        share = done / total if total else 1.0
        filled = round(self.width * share)
        elapsed = max(time.monotonic() - self.started, 1e-9)
        self.err.write(
            f"\r{service:<10} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"{done}/{total} {share:6.1%}  {self.folded / elapsed:,.0f} events/s"
        )
        self.err.flush()

    def close(self) -> None:
        if self.service:
            self.err.write("\n")


def _projections_rebuild(args: argparse.Namespace, out: TextIO) -> int:
    with _commerce(args) as commerce:
        bar = _ProgressBar(sys.stderr)
        started = time.monotonic()
        try:
            folded = commerce.rebuild_views(None if args.quiet else bar)
        finally:
            bar.close()
        elapsed = time.monotonic() - started
    total = sum(folded.values())
    rate = total / elapsed if elapsed > 0 else 0.0
    out.write(f"rebuilt {total} events into the read models in {elapsed:.2f} s ({rate:,.0f}/s)\n")
    for service, count in folded.items():
        out.write(f"  {service}: {count}\n")
    return 0


def _projections_status(args: argparse.Namespace, out: TextIO) -> int:
    rows: list[Sequence[object]] = [("projection", "service", "position", "log head", "behind")]
    with _commerce(args) as commerce:
        for app in (commerce.inventory, commerce.orders, commerce.carts, commerce.sagas):
            head = app.recorder.max_notification_id() or 0
            for projection in app.projections:
                position = app.views.position(projection.name)
                rows.append((projection.name, app.name, position, head, max(head - position, 0)))
        backend = commerce.settings.views_backend
    out.write(f"read models in {backend}\n")
    _table(rows, out)
    return 0


def _inventory_report(args: argparse.Namespace, out: TextIO) -> int:
    with _commerce(args) as commerce:
        summary = commerce.inventory.summary()
        low = commerce.inventory.low_stock()
        reorder = commerce.inventory.reorder_needed()
    value = ", ".join(str(v) for v in summary.value.values()) or "0"
    out.write(
        f"{summary.items} items: on hand {summary.on_hand}, reserved {summary.reserved}, "
        f"available {summary.available}; value {value}\n"
    )
    for title, items in (("low stock", low), ("reorder needed", reorder)):
        out.write(f"{title}: {len(items)}\n")
        if items:
            rows: list[Sequence[object]] = [("sku", "available", "threshold", "reorder qty")]
            rows.extend(
                (i.sku, i.available, i.low_stock_threshold, i.reorder_quantity) for i in items
            )
            _table(rows, out)
    return 0


def _export(args: argparse.Namespace, out: TextIO) -> int:
    names = sorted(DIAGRAMS) if args.diagram == "all" else [args.diagram]
    for name in names:
        out.write(f"%% {name}\n{DIAGRAMS[name]()}")
    return 0


# --- parsing ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="suuupra-commerce",
        description="Operate a suuupra_commerce store: run the saga worker, inspect and "
        "repair sagas, report on inventory, export diagrams. Settings come from COMMERCE_* "
        "(and POSTGRES_*, REDIS_*, CIPHER_*) environment variables.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="run the end-to-end demo on the configured store (SQLite files by default)"
    )
    demo.add_argument("--data-dir", help="folder for the SQLite files (default: a new one)")
    demo.set_defaults(run=_demo)

    host_help = "module:function returning Commerce's keyword arguments (the host's ports)"
    worker = commands.add_parser(
        "worker",
        help="run the saga engine and the outbox relays until stopped, sharing the saga "
        "partitions with other workers",
    )
    worker.add_argument("--host", help=host_help)
    worker.add_argument(
        "--role",
        choices=["sagas", "relay", "projections", "all"],
        default="all",
        help="what to run: the saga engine, the outbox relays (COMMERCE_MESSAGING), the "
        "read-model folding (COMMERCE_VIEWS_FOLD=worker), or all that is configured "
        "(default: all; without a bus and with folding on query, all is the sagas)",
    )
    worker.add_argument(
        "--once",
        action="store_true",
        help="run every partition until idle and the relays until caught up, then exit "
        "(while no other worker runs)",
    )
    worker.set_defaults(run=_worker)

    sagas = commands.add_parser("sagas", help="list, show and repair sagas")
    saga_commands = sagas.add_subparsers(dest="saga_command", required=True, metavar="ACTION")
    listing = saga_commands.add_parser("list", help="sagas, newest first")
    listing.add_argument("--status", choices=[s.value for s in SagaStatus])
    listing.add_argument("--definition", help="e.g. order_fulfilment")
    listing.add_argument("--subject", help="what the saga works on, e.g. an order id")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=_sagas_list)
    show = saga_commands.add_parser("show", help="one saga's timeline")
    show.add_argument("saga_id")
    show.set_defaults(run=_sagas_show)
    stats = saga_commands.add_parser("stats", help="counts by definition and status")
    stats.set_defaults(run=_sagas_stats)
    for action, text in (
        ("retry", "send the step a stuck saga is at again"),
        ("skip", "count a stuck saga's step as done by hand"),
        ("compensate", "undo what a saga did (refused past its pivot)"),
        ("resolve", "mark a stuck saga as ended by hand"),
    ):
        acting = saga_commands.add_parser(action, help=text)
        acting.add_argument("saga_id")
        acting.add_argument("--by", required=True, help="who acts (recorded)")
        acting.add_argument("--reason", required=True, help="why (recorded)")
        if action == "resolve":
            acting.add_argument("--outcome", required=True, choices=["completed", "compensated"])
        acting.set_defaults(run=_sagas_act, action=action)

    projections = commands.add_parser("projections", help="the read models: status, rebuild")
    projection_commands = projections.add_subparsers(
        dest="projections_command", required=True, metavar="ACTION"
    )
    rebuild = projection_commands.add_parser(
        "rebuild",
        help="fold every read model again from the first event (progress bar on stderr)",
    )
    rebuild.add_argument("--quiet", action="store_true", help="no progress bar")
    rebuild.set_defaults(run=_projections_rebuild)
    status = projection_commands.add_parser(
        "status", help="how far each read model has folded its service's log"
    )
    status.set_defaults(run=_projections_status)

    inventory = commands.add_parser("inventory", help="inventory reports")
    inventory_commands = inventory.add_subparsers(dest="inventory_command", required=True)
    report = inventory_commands.add_parser("report", help="totals, low stock, reorder needed")
    report.set_defaults(run=_inventory_report)

    export = commands.add_parser("export", help="export diagrams")
    export_commands = export.add_subparsers(dest="export_command", required=True)
    diagram = export_commands.add_parser("diagram", help="Mermaid diagrams of sagas and lifecycles")
    diagram.add_argument("diagram", choices=[*sorted(DIAGRAMS), "all"])
    diagram.set_defaults(run=_export)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    run: Callable[[argparse.Namespace, TextIO], int] = args.run
    try:
        return run(args, out or sys.stdout)
    except (CommerceError, UsageError) as error:
        sys.stderr.write(f"suuupra-commerce: {type(error).__name__}: {error}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
