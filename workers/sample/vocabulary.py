"""Fixed vocabulary of the sample instance: names, products and groups the generator draws from.

Kept apart from ``generate.py`` so the shape of the estate (which services exist, which products are
licensed) reads as data, and the generator reads as the rules that connect them.
"""

from __future__ import annotations

OWNERS: tuple[str, ...] = (
    "Alice Nguyen",
    "Bruno Costa",
    "Chen Wei",
    "Dana Kowalski",
    "Emeka Obi",
    "Fatima Zahra",
    "Gustav Berg",
    "Hana Sato",
    "Ivan Petrov",
    "Julia Romero",
    "Kwame Mensah",
    "Lena Fischer",
    "Marco Rossi",
    "Nadia Haddad",
    "Oscar Lindqvist",
    "Priya Raman",
)

# service -> (label, criticality, [(application, server role, windows?, database engine or None)])
SERVICES: dict[str, tuple[str, str, list[tuple[str, str, bool, str | None]]]] = {
    "svc-payments": (
        "Payments",
        "1 - most critical",
        [
            ("app-payments-api", "api", False, "Oracle 19c"),
            ("app-payments-web", "web", False, None),
            ("app-payments-worker", "batch", False, "PostgreSQL 15"),
        ],
    ),
    "svc-checkout": (
        "Checkout",
        "1 - most critical",
        [
            ("app-checkout-web", "web", False, None),
            ("app-checkout-api", "api", False, "PostgreSQL 15"),
        ],
    ),
    "svc-billing": (
        "Billing",
        "2 - somewhat critical",
        [
            ("app-billing-engine", "app", False, "Oracle 19c"),
            ("app-invoice-portal", "web", False, None),
        ],
    ),
    "svc-crm": (
        "Customer Relationship Management",
        "2 - somewhat critical",
        [
            ("app-crm-web", "web", False, "PostgreSQL 15"),
            ("app-crm-sync", "batch", False, None),
        ],
    ),
    "svc-hr-portal": (
        "HR Portal",
        "3 - less critical",
        [
            ("app-hr-portal", "iis", True, "MSSQL 2019"),
            ("app-payroll", "app", True, "MSSQL 2019"),
        ],
    ),
    "svc-email": (
        "Corporate Email",
        "2 - somewhat critical",
        [
            ("app-exchange", "exch", True, None),
            ("app-smtp-relay", "mail", False, None),
        ],
    ),
    "svc-identity": (
        "Identity and Access",
        "1 - most critical",
        [
            ("app-sso", "api", False, "PostgreSQL 15"),
            ("app-directory", "ad", True, None),
        ],
    ),
    "svc-inventory": (
        "Inventory",
        "3 - less critical",
        [
            ("app-inventory-api", "api", False, "MySQL 8.0"),
            ("app-inventory-sync", "batch", False, None),
        ],
    ),
    "svc-analytics": (
        "Analytics",
        "3 - less critical",
        [
            ("app-analytics-etl", "batch", False, "Oracle 19c"),
            ("app-dashboards", "web", False, None),
        ],
    ),
    "svc-search": (
        "Product Search",
        "2 - somewhat critical",
        [
            ("app-search-api", "api", False, None),
            ("app-search-indexer", "batch", False, "PostgreSQL 15"),
        ],
    ),
    "svc-logistics": (
        "Logistics",
        "2 - somewhat critical",
        [
            ("app-shipping-api", "api", False, "Oracle 19c"),
            ("app-tracking-web", "web", False, None),
        ],
    ),
    "svc-support": (
        "Customer Support",
        "3 - less critical",
        [
            ("app-helpdesk", "app", False, "MySQL 8.0"),
            ("app-chatbot", "api", False, None),
        ],
    ),
}

# application -> application it depends on (cross-service dependencies)
APP_DEPENDENCIES: tuple[tuple[str, str], ...] = (
    ("app-checkout-api", "app-payments-api"),
    ("app-checkout-web", "app-sso"),
    ("app-crm-web", "app-sso"),
    ("app-billing-engine", "app-payments-api"),
    ("app-helpdesk", "app-crm-web"),
    ("app-shipping-api", "app-inventory-api"),
)

# (server role, environment, windows?, count): infrastructure servers no application runs on
STANDALONE_SERVERS: tuple[tuple[str, str, bool, int], ...] = (
    ("cache", "Production", False, 4),
    ("mq", "Production", False, 3),
    ("mon", "Production", False, 2),
    ("jump", "Production", False, 2),
    ("file", "Production", True, 3),
    ("k8s-node", "Production", False, 6),
    ("sql", "Production", True, 4),
    ("rds", "Production", True, 3),
    ("ts", "Staging", True, 2),
    ("build", "Development", False, 3),
    ("ci", "Test", False, 2),
)

END_OF_LIFE_OS: tuple[str, ...] = ("CentOS 7.9", "Windows Server 2012 R2")

# what discovery finds after an in-place upgrade nobody recorded (configuration drift)
OS_UPGRADES = {
    "Red Hat Enterprise Linux 8.8": "Red Hat Enterprise Linux 8.10",
    "Red Hat Enterprise Linux 9.2": "Red Hat Enterprise Linux 9.4",
    "Ubuntu 22.04 LTS": "Ubuntu 24.04 LTS",
    "Windows Server 2019": "Windows Server 2022",
    "Windows Server 2022": "Windows Server 2025",
    "CentOS 7.9": "Rocky Linux 9.4",
    "Windows Server 2012 R2": "Windows Server 2019",
}

_CISCO = ("Cisco Systems", "Catalyst 9300")
NETGEAR: tuple[tuple[str, str, str, str, tuple[str, str]], ...] = (
    ("sw-core-01", "core", "Production", "Cisco NX-OS 10.2", ("Cisco Systems", "Nexus 9336C")),
    ("sw-core-02", "core", "Production", "Cisco NX-OS 10.2", ("Cisco Systems", "Nexus 9336C")),
    *((f"sw-acc-{n:02d}", "access", "Production", "Cisco IOS XE 17.9", _CISCO) for n in range(1, 13)),
    ("fw-edge-01", "firewall", "Production", "PAN-OS 11.0", ("Palo Alto Networks", "PA-3220")),
    ("fw-edge-02", "firewall", "Production", "PAN-OS 11.0", ("Palo Alto Networks", "PA-3220")),
    *((f"lb-prod-{n:02d}", "load balancer", "Production", "F5 TMOS 17.1", ("F5", "BIG-IP i5800")) for n in (1, 2, 3)),
    ("rtr-dc1-01", "router", "Production", "Cisco IOS XE 17.9", ("Cisco Systems", "ASR 1001-X")),
    ("rtr-dc1-02", "router", "Production", "Cisco IOS XE 17.9", ("Cisco Systems", "ASR 1001-X")),
    ("rtr-dc2-01", "router", "Staging", "Cisco IOS XE 17.6", ("Cisco Systems", "ASR 1001-X")),
    ("sw-stg-01", "access", "Staging", "Cisco IOS XE 17.6", _CISCO),
    ("sw-stg-02", "access", "Staging", "Cisco IOS XE 17.6", _CISCO),
    ("sw-lab-01", "access", "Development", "Cisco IOS XE 16.12", _CISCO),
    ("sw-lab-02", "access", "Test", "Cisco IOS XE 16.12", _CISCO),
)

_NETAPP = ("NetApp", "AFF A400")
STORAGE: tuple[tuple[str, str, str, tuple[str, str]], ...] = (
    *((f"san-prod-{n:02d}", "Production", "SAN", ("Pure Storage", "FlashArray//X70")) for n in range(1, 5)),
    *((f"nas-prod-{n:02d}", "Production", "NAS", _NETAPP) for n in range(1, 4)),
    ("backup-prod-01", "Production", "backup", ("Dell Inc.", "PowerProtect DD6900")),
    ("san-stg-01", "Staging", "SAN", ("Pure Storage", "FlashArray//X20")),
    ("nas-stg-01", "Staging", "NAS", _NETAPP),
    ("nas-dev-01", "Development", "NAS", ("NetApp", "FAS2750")),
    ("nas-test-01", "Test", "NAS", ("NetApp", "FAS2750")),
)

# (name, ip ranges, discover type, active?, run)
DISCOVERY_SCHEDULES: tuple[tuple[str, tuple[str, ...], str, bool, str], ...] = (
    ("DC1 Production servers", ("10.10.0.0/16",), "CIs", True, "Daily 02:00"),
    ("DC2 Staging", ("10.20.0.0/16",), "CIs", True, "Weekly Sunday 03:00"),
    ("Lab Development and Test", ("10.30.0.0/16", "10.31.0.0/16"), "CIs", True, "Weekly Saturday 22:00"),
    ("Network devices", ("10.0.0.0/24",), "Networks", True, "Daily 01:00"),
    ("Storage arrays", ("10.40.0.0/24",), "CIs", True, "Weekly Monday 04:00"),
    ("DMZ legacy", ("172.16.0.0/24",), "IP Scan", False, "Monthly"),
)

# product -> (publisher, licence metric, spare rights: entitlements = installs + spare; negative = over-deployed)
SOFTWARE: dict[str, tuple[str, str, int]] = {
    "Red Hat Enterprise Linux": ("Red Hat", "Per device", 12),
    "Microsoft Windows Server Datacenter": ("Microsoft", "Per device", 4),
    "Oracle Database Enterprise Edition": ("Oracle", "Per processor", -4),
    "Microsoft SQL Server Enterprise": ("Microsoft", "Per core pack", 0),
    "PostgreSQL Enterprise Support": ("EDB", "Per server", 3),
    "MySQL Enterprise Edition": ("Oracle", "Per server", 1),
    "Datadog Agent": ("Datadog", "Per host", 20),
    "CrowdStrike Falcon Sensor": ("CrowdStrike", "Per device", 15),
    "Microsoft 365 E3": ("Microsoft", "Per user", 5),
    "Adobe Acrobat Pro": ("Adobe", "Per user", 2),
    "Tableau Desktop": ("Salesforce", "Per user", -3),
    "WinZip Pro": ("Corel", "Per user", 0),
}
UNLICENSED: tuple[str, ...] = ("WinZip Pro",)

# (name, category, short description, fulfilment group, delivery days)
CATALOG_ITEMS: tuple[tuple[str, str, str, str, int], ...] = (
    (
        "Emergency change - service restoration",
        "Remediation",
        "Restore a degraded business service; expedited CAB",
        "Application Support",
        1,
    ),
    (
        "Standard change - server remediation",
        "Remediation",
        "Pre-approved fix on one or more servers (patch, restart, resize)",
        "Linux Operations",
        2,
    ),
    (
        "CMDB data correction",
        "Data Quality",
        "Fix duplicate, stale or incomplete configuration items",
        "CMDB Data Stewards",
        3,
    ),
    (
        "Register discovered device",
        "Discovery",
        "Add a discovered, unmanaged device to the CMDB",
        "CMDB Data Stewards",
        2,
    ),
    (
        "Decommission configuration item",
        "Lifecycle",
        "Retire a CI and reclaim its hardware and licences",
        "Asset Management",
        5,
    ),
    ("Hardware refresh", "Lifecycle", "Replace hardware that is past or near end of life", "Asset Management", 20),
    (
        "Software licence true-up",
        "Licensing",
        "Buy or reclaim licences for an over-deployed product",
        "Asset Management",
        10,
    ),
    ("New virtual server", "Infrastructure", "Provision a Linux or Windows virtual machine", "Linux Operations", 3),
    ("Database access request", "Access", "Grant read or write access to a database", "Database Administration", 2),
    ("Firewall rule change", "Network", "Open or close a firewall rule between zones", "Network Operations", 4),
    ("Storage capacity increase", "Infrastructure", "Extend a volume or share", "Storage Team", 3),
    ("General IT request", "General", "Anything not covered elsewhere; triaged by the Service Desk", "Service Desk", 3),
)

# (group, manager, CI classes or categories it handles)
ASSIGNMENT_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Linux Operations", "Gustav Berg", ("cmdb_ci_linux_server",)),
    ("Windows Operations", "Hana Sato", ("cmdb_ci_win_server",)),
    ("Database Administration", "Ivan Petrov", ("cmdb_ci_database",)),
    ("Network Operations", "Julia Romero", ("cmdb_ci_netgear",)),
    ("Storage Team", "Kwame Mensah", ("cmdb_ci_storage",)),
    ("Application Support", "Lena Fischer", ("cmdb_ci_appl", "cmdb_ci_service")),
    ("CMDB Data Stewards", "Marco Rossi", ("Data Quality", "Discovery")),
    ("Asset Management", "Nadia Haddad", ("Lifecycle", "Licensing")),
    ("Service Desk", "Oscar Lindqvist", ("General",)),
)
