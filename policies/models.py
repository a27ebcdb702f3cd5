"""Role policies and decisions as pydantic models.

Why validate here: a malformed policy (a typo in an action pattern, a role with no permissions) would
otherwise silently deny or allow work at run time. Rejecting it when the policy is built makes every
``RolePolicy`` in the process well-formed, so the compiled table never needs to re-check.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Permission = Literal["read", "write", "execute", "admin"]

#: The access levels an action can declare; ``admin`` in a role's permissions implies all of them.
ACCESS_LEVELS: tuple[str, ...] = ("read", "write", "execute")

#: The seven domains of the product ("all 7 domains" in the compatible role table).
DOMAINS: tuple[str, ...] = ("cmdb", "discovery", "asset", "csa", "audit", "documentation", "orchestration")

_SEGMENT = r"[a-z0-9_][a-z0-9_-]*"
_EXACT_ACTION = re.compile(rf"{_SEGMENT}(\.{_SEGMENT})+")
_PREFIX_PATTERN = re.compile(rf"{_SEGMENT}(\.{_SEGMENT})*\.\*")
_DOMAIN = re.compile(_SEGMENT)


def _check_action_pattern(pattern: str) -> str:
    if pattern == "*" or _EXACT_ACTION.fullmatch(pattern) or _PREFIX_PATTERN.fullmatch(pattern):
        return pattern
    raise ValueError(
        f"malformed action pattern {pattern!r}: use '*', an action '<domain>.<verb>' "
        "or a prefix '<domain>.*' (lower-case letters, digits, '_' and '-')"
    )


class RolePolicy(BaseModel):
    """What one agent role may do: the domains it works in, the actions it may run, its access levels."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: str = ""
    allowed_domains: list[str] = Field(default_factory=list)
    allowed_actions: list[str] = Field(default_factory=list)
    permissions: list[Permission]

    @field_validator("role_id", "name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("allowed_domains")
    @classmethod
    def _domains_well_formed(cls, value: list[str]) -> list[str]:
        for domain in value:
            if not _DOMAIN.fullmatch(domain):
                raise ValueError(f"malformed domain {domain!r}: use lower-case letters, digits, '_' and '-'")
        return value

    @field_validator("allowed_actions")
    @classmethod
    def _actions_well_formed(cls, value: list[str]) -> list[str]:
        return [_check_action_pattern(pattern) for pattern in value]

    @field_validator("permissions")
    @classmethod
    def _has_permissions(cls, value: list[Permission]) -> list[Permission]:
        if not value:
            raise ValueError("must list at least one of read, write, execute, admin")
        return value

    @model_validator(mode="after")
    def _domains_or_actions(self) -> RolePolicy:
        if not self.allowed_domains and not self.allowed_actions:
            raise ValueError("allowed_domains / allowed_actions: a policy must list at least one domain or action")
        return self


class Decision(BaseModel):
    """The answer to 'may this role run this action?', with a reason a person can act on."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    reason: str
    role: str
    action: str
