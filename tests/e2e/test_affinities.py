"""`orchestrator affinities` as a user runs it: the pairs a log's purchases teach, one item's neighbours, errors."""

from pathlib import Path

import orjson

from tests.e2e.test_cli import cli


def purchase(event_id: str, at: str, customer: str, items: list[object] | None = None) -> dict[str, object]:
    props: dict[str, object] = {"order_id": f"o-{event_id}", "value": 10}
    if items is not None:
        props["items"] = items
    return {"event_id": event_id, "type": "purchase", "occurred_at": at, "channel": "web", "customer_id": customer,
            "properties": props}  # fmt: skip


def write_log(tmp_path: Path, *lines: object) -> Path:
    log = tmp_path / "events.jsonl"
    log.write_bytes(b"".join(line if isinstance(line, bytes) else orjson.dumps(line) + b"\n" for line in lines))
    return log


def shop(tmp_path: Path) -> Path:
    """Sneakers and socks bought together twice; a bag in most baskets (with a tee twice: once from the cart); one
    purchase sent twice (counted once); a bad line."""
    cart = [{"event_id": f"add-{sku}", "type": "cart_add", "occurred_at": "2026-03-02T12:30:00Z", "channel": "web",
             "customer_id": "c-4", "properties": {"sku": sku, "price": 5}} for sku in ("BAG", "TEE-7")]  # fmt: skip
    return write_log(
        tmp_path,
        purchase("p1", "2026-03-02T10:00:00Z", "c-1", [{"sku": "SNK-42"}, {"sku": "SOCK-1"}, {"sku": "BAG"}]),
        purchase("p2", "2026-03-02T11:00:00Z", "c-2", ["SNK-42", "SOCK-1"]),
        b"{not json\n",
        purchase("p3", "2026-03-02T12:00:00Z", "c-3", ["BAG", "TEE-7"]),
        purchase("p3", "2026-03-02T12:00:00Z", "c-3", ["BAG", "TEE-7"]),
        *cart,
        purchase("p4", "2026-03-02T13:00:00Z", "c-4"),  # no items: the cart is the basket
        purchase("p5", "2026-03-02T14:00:00Z", "c-5", ["BAG"]),
    )


def rows(output: str) -> list[list[str]]:
    """The cells of a rich table's body rows."""
    return [[cell.strip() for cell in line.strip("│ ").split("│")] for line in output.splitlines() if "│" in line]


def test_affinities_prints_the_pairs_bought_together_best_first(tmp_path: Path) -> None:
    log = shop(tmp_path)
    done = cli("affinities", "--events", str(log))
    assert done.returncode == 0, done.stderr
    assert rows(done.stdout) == [["SNK-42", "SOCK-1", "2", "1.0000"], ["BAG", "TEE-7", "2", "0.7071"]]
    assert "Learned from 5 basket(s) of 4 item(s) bought before 2026-03-02T15:00:00Z" in done.stdout
    assert f"{log}:3: skipped: not JSON" in done.stderr
    assert rows(cli("affinities", "--events", str(log), "--top", "1").stdout) == [["SNK-42", "SOCK-1", "2", "1.0000"]]


def test_affinities_of_one_item(tmp_path: Path) -> None:
    log = shop(tmp_path)
    done = cli("affinities", "--events", str(log), "--sku", "BAG")
    assert done.returncode == 0, done.stderr
    assert "Bought with BAG (in 4 basket(s))" in done.stdout
    assert rows(done.stdout) == [["TEE-7", "2", "0.7071"]]  # SNK-42 and SOCK-1: one basket each with BAG
    lonely = cli("affinities", "--events", str(log), "--sku", "SOCK-1", "--journeys", "journeys")
    assert lonely.returncode == 0 and rows(lonely.stdout) == [["SNK-42", "2", "1.0000"]]


def test_an_unknown_item_or_log_is_a_clear_error(tmp_path: Path) -> None:
    log = shop(tmp_path)
    done = cli("affinities", "--events", str(log), "--sku", "NOPE-1")
    assert done.returncode == 1 and done.stdout == ""
    assert f"{log}: item 'NOPE-1' is in none of the 5 basket(s) of the log" in done.stderr
    missing = cli("affinities", "--events", str(tmp_path / "nowhere.jsonl"))
    assert missing.returncode == 1 and "nowhere.jsonl: cannot read the event log" in missing.stderr
    assert cli("affinities", "--events", str(log), "--top", "0").returncode == 2


def test_a_log_without_pairs_says_so() -> None:
    done = cli("affinities", "--events", "examples/events.jsonl")
    assert done.returncode == 0, done.stderr
    assert rows(done.stdout) == [] and "no pair of items is in 2 or more baskets yet" in done.stdout


def test_affinities_help() -> None:
    done = cli("affinities", "--help")
    assert done.returncode == 0 and "Usage: orchestrator affinities" in done.stdout and "--sku" in done.stdout
