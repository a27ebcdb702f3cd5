"""The bundled sample instance: shipped data is realistic and current, writes are exactly-once and durable."""

from __future__ import annotations

import multiprocessing
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path

import pytest

from orchestrator.errors import TaskInvalidError
from orchestrator.settings import reset_settings
from workers.sample import SampleInstance
from workers.sample.base import load_base
from workers.sample.generate import build, render

SYS_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[SampleInstance]:
    inst = SampleInstance(tmp_path / "nested" / "instance.sqlite")
    yield inst
    inst.close()


def test_shipped_file_is_the_generators_output_and_small() -> None:
    shipped = resources.files("workers.sample").joinpath("data/instance.json")
    text = shipped.read_text(encoding="utf-8")
    assert len(text.encode()) < 1_500_000
    assert render(build()) == text  # regenerate with: uv run python -m workers.sample.generate


def test_configuration_items_are_realistic(instance: SampleInstance) -> None:
    cis = instance.cis(include_retired=True)
    assert 250 <= len(cis) <= 350
    assert all(SYS_ID.match(c["sys_id"]) for c in cis)
    assert len({c["sys_id"] for c in cis}) == len(cis)
    classes = Counter(c["sys_class_name"] for c in cis)
    assert set(classes) == {
        "cmdb_ci_linux_server",
        "cmdb_ci_win_server",
        "cmdb_ci_database",
        "cmdb_ci_appl",
        "cmdb_ci_service",
        "cmdb_ci_netgear",
        "cmdb_ci_storage",
    }
    assert {c["environment"] for c in cis} == {"Production", "Staging", "Development", "Test"}
    names = {c["name"] for c in cis}
    assert {"web-prod-01", "db-prod-03", "svc-payments", "sw-core-01", "san-prod-01"} <= names


def test_relationships_connect_services_to_infrastructure(instance: SampleInstance) -> None:
    by_id = {c["sys_id"]: c for c in instance.cis(include_retired=True)}
    rels = instance.relationships()
    assert all(r["parent"] in by_id and r["child"] in by_id for r in rels)
    shapes = Counter(
        (by_id[r["parent"]]["sys_class_name"], r["type"], by_id[r["child"]]["sys_class_name"]) for r in rels
    )
    assert shapes[("cmdb_ci_service", "Depends on::Used by", "cmdb_ci_appl")] >= 12
    assert shapes[("cmdb_ci_appl", "Runs on::Runs", "cmdb_ci_linux_server")] > 20
    assert shapes[("cmdb_ci_appl", "Hosted on::Hosts", "cmdb_ci_win_server")] > 0
    assert shapes[("cmdb_ci_linux_server", "Depends on::Used by", "cmdb_ci_database")] > 0
    assert shapes[("cmdb_ci_linux_server", "Depends on::Used by", "cmdb_ci_storage")] > 0
    assert shapes[("cmdb_ci_linux_server", "Connected by::Connects", "cmdb_ci_netgear")] > 0


def test_dates_are_moved_to_today_keeping_ages(instance: SampleInstance) -> None:
    meta = instance.meta
    reference = datetime.fromisoformat(meta["reference_time"]).date()
    at_reference = load_base(reference)["cmdb_ci"][0]["updated_on"]
    in_a_year = load_base(date(reference.year + 1, reference.month, reference.day))["cmdb_ci"][0]["updated_on"]
    moved = datetime.fromisoformat(in_a_year) - datetime.fromisoformat(at_reference)
    assert moved.days == 365
    newest = max(datetime.fromisoformat(c["updated_on"]) for c in instance.cis())
    assert (datetime.now(UTC) - newest).days <= 2


def test_deliberate_defects_are_present(instance: SampleInstance) -> None:
    defects = instance.meta["deliberate_defects"]
    names = Counter(c["name"] for c in instance.cis())
    assert all(names[name] == 2 for name in defects["duplicate_names"])
    serials = Counter(c["serial_number"] for c in instance.cis() if c["serial_number"])
    by_name = {c["name"]: c for c in instance.cis()}
    assert all(serials[by_name[original]["serial_number"]] >= 2 for original, _ in defects["duplicate_serials"])
    assert len(defects["incomplete"]) >= 15 and len(defects["stale"]) >= 15
    assert defects["over_deployed"] and defects["unmatched_devices"] and defects["unlinked_assets"]
    assert len(instance.table("discovery_schedule")) == 6
    assert {"alm_asset", "cmdb_sam_sw_install", "alm_license", "sc_cat_item", "sys_user_group"} <= set(load_base())


def test_creating_an_instance_does_no_io(tmp_path: Path) -> None:
    inst = SampleInstance(tmp_path / "later" / "db.sqlite")
    assert not (tmp_path / "later").exists()
    inst.close()


def test_default_path_is_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_DATA_DIR", str(tmp_path / "data"))
    reset_settings()
    try:
        inst = SampleInstance()
        assert inst.path == tmp_path / "data" / "sample-instance.sqlite"
        inst.create_ticket("k1", prefix="CHG", short_description="x", risk_level="low", affected_cis=[])
        assert inst.path.exists()
        inst.close()
    finally:
        reset_settings()


def test_same_idempotency_key_writes_one_ticket(instance: SampleInstance) -> None:
    first = instance.create_ticket(
        "run:step", prefix="CHG", short_description="Fix db", risk_level="high", affected_cis=["a" * 32]
    )
    again = instance.create_ticket(
        "run:step", prefix="CHG", short_description="Changed text", risk_level="low", affected_cis=[]
    )
    assert first["number"] == "CHG0010001" and first["duplicate_suppressed"] is False
    assert again["duplicate_suppressed"] is True
    assert {k: v for k, v in again.items() if k != "duplicate_suppressed"} == {
        k: v for k, v in first.items() if k != "duplicate_suppressed"
    }
    assert instance.count_tickets() == 1 and instance.count_tickets("run:step") == 1
    other = instance.create_ticket("run:other", prefix="CHG", short_description="y", risk_level="low", affected_cis=[])
    request = instance.create_ticket("run:req", prefix="RITM", short_description="z", risk_level="low", affected_cis=[])
    assert (other["number"], request["number"]) == ("CHG0010002", "RITM0010001")
    assert instance.find_ticket("chg0010002")["sys_id"] == other["sys_id"]


def test_a_key_cannot_be_reused_for_another_kind_of_write(instance: SampleInstance) -> None:
    instance.create_ticket("k", prefix="CHG", short_description="x", risk_level="low", affected_cis=[])
    with pytest.raises(TaskInvalidError, match="already used"):
        instance.create_document("k", prefix="DOC", title="t", markdown="m")
    with pytest.raises(TaskInvalidError, match="idempotency_key"):
        instance.create_ticket("  ", prefix="CHG", short_description="x", risk_level="low", affected_cis=[])


def test_ci_writes_are_overlaid_on_reads(instance: SampleInstance) -> None:
    web = instance.find_ci("web-prod-01")
    assert web is not None
    instance.update_ci("u1", web["sys_id"], {"owner": "New Owner", "os": "Rocky Linux 9.4"})
    updated = instance.find_ci(web["sys_id"])
    assert updated is not None and updated["owner"] == "New Owner" and updated["os"] == "Rocky Linux 9.4"
    assert updated["updated_on"] > web["updated_on"]
    created = instance.create_ci("c1", "cmdb_ci_linux_server", "web-prod-99", {"environment": "Production"})
    assert instance.find_ci("web-prod-99")["sys_id"] == created["sys_id"]
    instance.retire_ci("r1", web["sys_id"])
    assert instance.find_ci("web-prod-01", include_retired=False) is None
    assert instance.find_ci(web["sys_id"])["install_status"] == "Retired"
    assert (
        len(instance.cis())
        == len(instance.cis(include_retired=True)) - len(instance.meta["deliberate_defects"]["retired"]) - 1
    )


def test_writes_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "instance.sqlite"
    first = SampleInstance(path)
    ticket = first.create_ticket("k", prefix="CHG", short_description="durable", risk_level="low", affected_cis=[])
    first.update_ci("u", first.find_ci("db-prod-01")["sys_id"], {"owner": "Persisted"})
    doc = first.create_document("d", prefix="KB", title="How to", markdown="# How to")
    first.close()
    second = SampleInstance(path)
    assert second.find_ticket(ticket["number"])["short_description"] == "durable"
    assert second.find_ci("db-prod-01")["owner"] == "Persisted"
    assert any(d.get("number") == doc["number"] for d in second.documents())
    again = second.create_ticket("k", prefix="CHG", short_description="other", risk_level="low", affected_cis=[])
    assert again["duplicate_suppressed"] is True and again["number"] == ticket["number"]
    second.close()


def _write_all_keys(path: str) -> list[str]:
    inst = SHARED[path]  # inherited through fork: the child must open its own connection
    return [
        inst.create_ticket(f"key-{n}", prefix="CHG", short_description=str(n), risk_level="low", affected_cis=[])[
            "number"
        ]
        for n in range(8)
    ]


SHARED: dict[str, SampleInstance] = {}


def test_processes_share_writes_exactly_once_after_fork(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    parent = SampleInstance(path)
    parent.create_ticket(
        "warm", prefix="RITM", short_description="opened before fork", risk_level="low", affected_cis=[]
    )
    SHARED[path] = parent
    try:
        with multiprocessing.get_context("fork").Pool(4) as pool:
            outcomes = pool.map(_write_all_keys, [path] * 4)
    finally:
        SHARED.pop(path)
    assert all(numbers == outcomes[0] for numbers in outcomes)  # every process got the same eight tickets
    assert parent.count_tickets() == 9
    assert sorted(outcomes[0]) == [f"CHG{10001 + n:07d}" for n in range(8)]
    parent.close()
