"""The compiled policy table and ``decide()``: the hot path of every dispatch and every worker.

Why compile: a decision runs twice per step (dispatch and worker), so policies are turned once into
frozensets and a dict keyed by role; a decision is then a handful of set lookups. Decisions are
deterministic for a table, so the table also memoises them (bounded, cleared when full).

Semantics (the compatible ``check_permission`` plus access levels):

1. an unknown role is denied;
2. ``*`` in ``allowed_actions`` allows every action in every domain;
3. otherwise, when a domain is given and the policy lists domains, the domain must be one of them
   (an empty domain list is unrestricted);
4. the action must be listed exactly, or a listed ``<prefix>.*`` must match one of its dotted prefixes;
5. NEW: the action's access level (read, write, execute) must be among the role's permissions
   (``admin`` implies all). This also applies to ``*`` roles: a read-only ``*`` role reads everything.

``decide`` never raises: any input, however odd, yields a ``Decision`` (denied when it cannot be judged).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from policies.errors import PolicyConfigError
from policies.models import ACCESS_LEVELS, Decision, RolePolicy

_KNOWN_ACCESS = frozenset((*ACCESS_LEVELS, "admin"))
_MEMO_LIMIT = 4096
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class _CompiledPolicy:
    wildcard: bool
    domains: frozenset[str]
    actions: frozenset[str]
    prefixes: frozenset[str]
    access: frozenset[str]
    domains_text: str
    access_text: str

    @classmethod
    def of(cls, policy: RolePolicy) -> _CompiledPolicy:
        granted: set[str] = set(policy.permissions)
        if "admin" in granted:
            granted.update(_KNOWN_ACCESS)
        return cls(
            wildcard="*" in policy.allowed_actions,
            domains=frozenset(policy.allowed_domains),
            actions=frozenset(a for a in policy.allowed_actions if not a.endswith("*")),
            prefixes=frozenset(a[:-2] for a in policy.allowed_actions if a.endswith(".*")),
            access=frozenset(granted),
            domains_text=", ".join(policy.allowed_domains),
            access_text=", ".join(policy.permissions),
        )

    def allows_action(self, action: str) -> bool:
        if action in self.actions:
            return True
        if self.prefixes:
            dot = action.find(".")
            while dot > 0:
                if action[:dot] in self.prefixes:
                    return True
                dot = action.find(".", dot + 1)
        return False


class PolicyTable:
    """An immutable set of role policies, compiled for fast decisions."""

    __slots__ = ("_compiled", "_memo", "_policies")

    def __init__(self, policies: Iterable[RolePolicy]) -> None:
        self._policies: dict[str, RolePolicy] = {}
        for policy in policies:
            if policy.role_id in self._policies:
                raise PolicyConfigError(f"duplicate role_id {policy.role_id!r} in one policy table")
            self._policies[policy.role_id] = policy
        self._compiled = {role: _CompiledPolicy.of(p) for role, p in self._policies.items()}
        self._memo: dict[tuple[str, str, str | None, str], Decision] = {}

    @property
    def policies(self) -> tuple[RolePolicy, ...]:
        return tuple(self._policies.values())

    @property
    def role_ids(self) -> tuple[str, ...]:
        return tuple(self._policies)

    def get(self, role_id: str) -> RolePolicy | None:
        return self._policies.get(role_id)

    def __contains__(self, role_id: object) -> bool:
        return role_id in self._policies

    def __iter__(self) -> Iterator[RolePolicy]:
        return iter(self._policies.values())

    def __len__(self) -> int:
        return len(self._policies)

    def __repr__(self) -> str:
        return f"PolicyTable(roles={list(self._policies)})"

    def with_overrides(self, policies: Iterable[RolePolicy]) -> PolicyTable:
        """A new table: ``policies`` replace same-id roles of this one and add new roles; others are kept."""
        merged = dict(self._policies)
        merged.update({p.role_id: p for p in policies})
        return PolicyTable(merged.values())

    def decide(self, role: str, action: str, domain: str | None, access: str) -> Decision:
        """Judge one request. Never raises. ``str`` subclasses (``StrEnum`` members) count as their value."""
        try:
            role, action, access = _plain(role), _plain(action), _plain(access)
            domain = _plain(domain)
            key = (role, action, domain or None, access)
            cached = self._memo.get(key)
            if cached is None:
                cached = self._judge(role, action, domain or None, access)
                if len(self._memo) >= _MEMO_LIMIT:
                    self._memo.clear()
                self._memo[key] = cached
            return cached
        except Exception as exc:  # never raise: a check that cannot be made is a denial
            return Decision.model_construct(
                allowed=False,
                reason=f"policy check could not be evaluated ({type(exc).__name__}: {exc}); denied",
                role=str(role),
                action=str(action),
            )

    def _judge(self, role: str, action: str, domain: str | None, access: str) -> Decision:
        policy = self._compiled.get(role)
        if policy is None:
            known = ", ".join(self._policies) or "none"
            return _deny(role, action, f"role {role!r} has no policy (known roles: {known})")
        if access not in _KNOWN_ACCESS:
            expected = "expected read, write or execute"
            return _deny(role, action, f"unknown access level {access!r} for {action!r}: {expected}")
        if not policy.wildcard:
            if domain is not None and policy.domains and domain not in policy.domains:
                return _deny(
                    role, action, f"role {role!r} may not work in domain {domain!r} (allowed: {policy.domains_text})"
                )
            if not policy.allows_action(action):
                return _deny(role, action, f"role {role!r} is not allowed action {action!r}")
        if access not in policy.access:
            return _deny(
                role,
                action,
                f"role {role!r} lacks {access!r} permission needed by {action!r} (has: {policy.access_text})",
            )
        how = "every action ('*')" if policy.wildcard else repr(action)
        return Decision(allowed=True, reason=f"role {role!r} may {access} {how}", role=role, action=action)


def _deny(role: str, action: str, reason: str) -> Decision:
    return Decision(allowed=False, reason=reason, role=role, action=action)


def _plain(value: _V) -> _V:
    """A ``StrEnum`` member becomes its plain value (so reasons read 'write', not '<Access.WRITE: ...>')."""
    if type(value) is not str and isinstance(value, str):
        return str(value)  # type: ignore[return-value]
    return value
