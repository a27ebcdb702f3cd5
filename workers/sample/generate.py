"""Generate the bundled sample instance (``workers/sample/data/instance.json``) from a fixed seed.

Why generated, not hand-written: ~300 configuration items with a consistent relationship graph, discovery
data, assets and licences are too many to keep coherent by hand, and the deliberate defects (duplicates,
stale and incomplete CIs, drift, over-deployed licences) must stay findable. The output is deterministic
(same seed, same bytes) and committed; ``meta.deliberate_defects`` lists what the handlers should find.

Run: ``uv run python -m workers.sample.generate`` (rewrites the JSON file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workers.sample import generate_ops as ops
from workers.sample import vocabulary as vocab
from workers.sample.builder import ENV_SHORT, REFERENCE_TIME, SEED, SUBNET, Builder, iso

OUTPUT = Path(__file__).parent / "data" / "instance.json"


def _infrastructure(b: Builder) -> dict[str, list[dict[str, Any]]]:
    """Network gear and storage first: servers attach to them."""
    net: dict[str, list[dict[str, Any]]] = {"core": [], "access": [], "Staging": [], "Development": [], "Test": []}
    for name, role, env, os_name, (manufacturer, model) in vocab.NETGEAR:
        gear = b.ci(
            "cmdb_ci_netgear",
            name,
            env,
            support_group="Network Operations",
            serial_number=b.serial(manufacturer),
            os=os_name,
            ip_address=b.next_ip("10.0.0"),
            manufacturer=manufacturer,
            model_id=model,
            short_description=f"{role} network device",
        )
        net.setdefault(role if env == "Production" else env, []).append(gear)
    for access in net["access"]:
        b.relate(access, b.rng.choice(net["core"]), "Depends on::Used by")
    storage: dict[str, list[dict[str, Any]]] = {}
    for name, env, kind, (manufacturer, model) in vocab.STORAGE:
        array = b.ci(
            "cmdb_ci_storage",
            name,
            env,
            support_group="Storage Team",
            serial_number=b.serial(manufacturer),
            ip_address=b.next_ip("10.40.0"),
            manufacturer=manufacturer,
            model_id=model,
            capacity_tb=b.rng.choice((48, 96, 192, 384)),
            short_description=f"{kind} storage array",
        )
        storage.setdefault(env, []).append(array)
    return {"switch:" + k: v for k, v in net.items()} | {"storage:" + k: v for k, v in storage.items()}


def _attach(b: Builder, server: dict[str, Any], infra: dict[str, list[dict[str, Any]]]) -> None:
    env = server["environment"]
    switches = infra["switch:access"] if env == "Production" else infra.get(f"switch:{env}") or infra["switch:core"]
    b.relate(server, b.rng.choice(switches), "Connected by::Connects")
    b.relate(server, b.rng.choice(infra.get(f"storage:{env}") or infra["storage:Production"]), "Depends on::Used by")


def _database(b: Builder, env: str, infra: dict[str, list[dict[str, Any]]], engine: str) -> dict[str, Any]:
    db = b.ci(
        "cmdb_ci_database",
        b.next_name(f"db-{ENV_SHORT[env]}"),
        env,
        support_group="Database Administration",
        ip_address=b.next_ip(f"{SUBNET[env]}.8"),
        engine=engine,
        short_description=f"{engine} database ({env})",
    )
    b.relate(db, b.rng.choice(infra.get(f"storage:{env}") or infra["storage:Production"]), "Hosted on::Hosts")
    return db


def _applications(b: Builder, infra: dict[str, list[dict[str, Any]]]) -> None:
    """Services depend on applications, applications run on servers, servers use databases and storage."""
    apps_by_name: dict[str, dict[str, Any]] = {}
    for svc_name, (label, criticality, apps) in vocab.SERVICES.items():
        service = b.ci(
            "cmdb_ci_service",
            svc_name,
            "Production",
            support_group="Application Support",
            criticality=criticality,
            short_description=f"{label} business service",
        )
        for app_name, role, windows, engine in apps:
            envs = ["Production"] + [e for e in ("Staging", "Development", "Test") if b.rng.random() < 0.45]
            for env in envs:
                suffix = "" if env == "Production" else f"-{ENV_SHORT[env]}"
                app = b.ci(
                    "cmdb_ci_appl",
                    app_name + suffix,
                    env,
                    support_group="Application Support",
                    version=f"{b.rng.randint(1, 9)}.{b.rng.randint(0, 20)}.{b.rng.randint(0, 9)}",
                    short_description=f"{label} application component",
                )
                if env == "Production":
                    b.relate(service, app, "Depends on::Used by")
                    apps_by_name[app_name] = app
                db = _database(b, env, infra, engine) if engine else None
                for _ in range(b.rng.choice((2, 3)) if env == "Production" else 1):
                    server = b.server(role, env, windows)
                    b.relate(app, server, "Hosted on::Hosts" if windows else "Runs on::Runs")
                    _attach(b, server, infra)
                    if db is not None:
                        b.relate(server, db, "Depends on::Used by")
    for parent, child in vocab.APP_DEPENDENCIES:
        b.relate(apps_by_name[parent], apps_by_name[child], "Depends on::Used by")
    for role, env, windows, count in vocab.STANDALONE_SERVERS:
        for _ in range(count):
            _attach(b, b.server(role, env, windows), infra)


def _legacy_os(b: Builder) -> None:
    """A few production servers still run end-of-life operating systems (a compliance finding)."""
    linux = [c for c in b.cis if c["sys_class_name"] == "cmdb_ci_linux_server" and c["environment"] == "Production"]
    windows = [c for c in b.cis if c["sys_class_name"] == "cmdb_ci_win_server"]
    for ci in b.rng.sample(linux, 3):
        ci["os"] = "CentOS 7.9"
    for ci in b.rng.sample(windows, 2):
        ci["os"] = "Windows Server 2012 R2"
    b.defects["end_of_life_os"] = sorted(c["name"] for c in b.cis if c["os"] in vocab.END_OF_LIFE_OS)


def _retired(b: Builder) -> None:
    for role, windows in (("web", False), ("app", False), ("batch", False), ("iis", True), ("file", True)):
        server = b.server(f"{role}-legacy", "Production", windows)
        server.update(operational_status="Retired", install_status="Retired", updated_on=b.days_ago(200, 500))
    b.defects["retired"] = sorted(c["name"] for c in b.cis if c["install_status"] == "Retired")


def _defects(b: Builder) -> None:
    """Duplicates (by name and by serial), stale and incomplete CIs."""
    by_name = {c["name"]: c for c in b.cis}
    name_dupes = []
    for name in ("web-prod-03", "db-prod-03", "win-iis-prod-02"):
        copy = dict(by_name[name], sys_id=b.sys_id(), updated_on=b.days_ago(380, 700), owner=None)
        if copy.get("serial_number"):
            copy["serial_number"] = b.serial("HPE")
        b.cis.append(copy)
        b.copies.add(copy["sys_id"])
        name_dupes.append(name)
    serial_dupes = []
    physical = [c for c in b.cis if c.get("serial_number") and not str(c["serial_number"]).startswith("VMware")]
    for cls in ("cmdb_ci_linux_server", "cmdb_ci_netgear", "cmdb_ci_storage"):
        original = b.rng.choice(
            [c for c in physical if c["sys_class_name"] == cls and c["install_status"] != "Retired"]
        )
        copy = dict(original, sys_id=b.sys_id(), name=f"{original['name']}-old", updated_on=b.days_ago(300, 600))
        b.cis.append(copy)
        b.copies.add(copy["sys_id"])
        serial_dupes.append([original["name"], f"{original['name']}-old"])
    b.defects["duplicate_names"] = name_dupes
    b.defects["duplicate_serials"] = serial_dupes
    live = [c for c in b.cis if c["install_status"] != "Retired" and c["sys_class_name"] != "cmdb_ci_service"]
    stale = b.rng.sample(live, 16)
    for ci in stale:
        ci["updated_on"] = b.days_ago(150, 800)
    b.defects["stale"] = sorted({c["name"] for c in stale})
    servers = [c for c in live if c["sys_class_name"] in {"cmdb_ci_linux_server", "cmdb_ci_win_server"}]
    incomplete = []
    for field, pool in (("owner", live), ("serial_number", servers), ("os", servers)):
        for ci in b.rng.sample(pool, 6):
            ci[field] = None
            incomplete.append([ci["name"], field])
    b.defects["incomplete"] = sorted(incomplete)


def build(seed: int = SEED) -> dict[str, Any]:
    """The whole instance as one JSON-ready dict (pure: same seed, same result)."""
    b = Builder(seed)
    infra = _infrastructure(b)
    _applications(b, infra)
    _legacy_os(b)
    _retired(b)
    _defects(b)
    tables: dict[str, Any] = {"cmdb_ci": b.cis, "cmdb_rel_ci": b.rels}
    tables.update(ops.discovery(b))
    tables.update(ops.assets(b))
    tables.update(ops.service_catalog(b))
    counts = {name: len(rows) for name, rows in tables.items()}
    meta = {"seed": seed, "reference_time": iso(REFERENCE_TIME), "counts": counts, "deliberate_defects": b.defects}
    return {"meta": meta, **tables}


def render(data: dict[str, Any]) -> str:
    """Stable text: sorted keys, one record per line, so a regenerated file diffs cleanly."""
    lines = ["{", f'"meta": {json.dumps(data["meta"], sort_keys=True)},']
    names = [k for k in data if k != "meta"]
    for index, name in enumerate(names):
        rows = ",\n".join(json.dumps(row, sort_keys=True, separators=(",", ":")) for row in data[name])
        lines.append(f'"{name}": [\n{rows}\n]' + ("," if index < len(names) - 1 else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(render(build()), encoding="utf-8")
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
