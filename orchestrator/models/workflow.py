"""Workflow definitions, templates and validated plans: data only, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from operator import is_
from typing import Any, Literal, NamedTuple, NoReturn

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import to_json

from orchestrator.models.common import Access, FailurePolicy, Priority

STEP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class WorkflowStep(BaseModel):
    """One step as a user writes it: an action, its parameters and what it waits for."""

    model_config = ConfigDict(extra="forbid")

    step_id: str = Field(pattern=STEP_ID_PATTERN, description="Unique id within the workflow")
    name: str = ""
    action: str = Field(description="Catalog action, '<domain>.<verb>'", pattern=r"^[a-z]+\.[a-z_]+$")
    agent: str | None = Field(default=None, description="Agent to run it; defaults to the action's agent")
    parameters: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    on_failure: FailurePolicy = FailurePolicy.STOP
    max_retries: int = Field(default=2, ge=0, le=20)
    timeout_seconds: float | None = Field(default=None, gt=0, le=24 * 3600, allow_inf_nan=False)
    target_domain: str | None = Field(default=None, description="Domain the action works on (policy check)")


ParamType = Literal["string", "integer", "number", "boolean", "array", "object"]


class TemplateParameter(BaseModel):
    """A declared, typed template parameter; steps reference it as ``"{{name}}"``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    type: ParamType = "string"
    required: bool = False
    default: Any = None
    description: str = ""
    enum: list[Any] | None = None


class WorkflowDefinition(BaseModel):
    """A workflow as data: a template file's body, or an inline definition submitted by a user."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    version: str = "1.0.0"
    parameters: list[TemplateParameter] = Field(default_factory=list)
    steps: list[WorkflowStep] = Field(min_length=1, max_length=20_000)

    @field_validator("steps")
    @classmethod
    def _non_empty(cls, steps: list[WorkflowStep]) -> list[WorkflowStep]:
        if not steps:
            raise ValueError("a workflow needs at least one step")
        return steps


class Template(WorkflowDefinition):
    """A named, shipped or user-provided workflow definition."""

    template_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    domain: str = ""
    tags: list[str] = Field(default_factory=list)
    source: str = "builtin"


class PlannedStepModel(BaseModel):
    """The validated wire form of a planned step: what the run hash stores as ``p:<step>`` (its JSON is pydantic's).

    Readers of stored specs validate through it (``PlannedStep.model_validate_json``); plans are made of
    ``PlannedStep`` records, whose ``model_dump_json`` writes exactly what this model would.
    """

    step_id: str
    name: str
    action: str
    agent_id: str
    domain: str
    target_domain: str
    access: Access
    idempotent: bool
    parameters: dict[str, Any]
    depends_on: list[str]
    on_failure: FailurePolicy
    max_retries: int
    timeout_seconds: float


class PlannedStep(NamedTuple):
    """A step after validation: agent, access and limits resolved from the catalog, parameters bound.

    Why a named tuple and not a pydantic model: a plan holds one per step (10,000 in a large generated plan), and
    a model per step cost more than the rest of planning together (construction, and three objects per step the
    garbage collector keeps tracking). Build one from unchecked data with ``model_validate`` (that validates
    through ``PlannedStepModel``); ``plan()`` builds them directly from values it has just checked. The stored
    form is unchanged: ``model_dump_json`` gives ``PlannedStepModel``'s JSON, byte for byte.
    """

    step_id: str
    name: str
    action: str
    agent_id: str
    domain: str
    target_domain: str
    access: Access
    idempotent: bool
    parameters: dict[str, Any]
    depends_on: tuple[str, ...]
    on_failure: FailurePolicy
    max_retries: int
    timeout_seconds: float

    @classmethod
    def model_validate(cls, data: Any) -> PlannedStep:
        """A record from a mapping (or a record), validated and coerced as the stored form is."""
        if isinstance(data, PlannedStep):
            data = data._asdict()
        return cls.from_model(PlannedStepModel.model_validate(data))

    @classmethod
    def model_validate_json(cls, raw: str | bytes) -> PlannedStep:
        """A record from its stored JSON (``p:<step>`` of a run hash), validated."""
        return cls.from_model(PlannedStepModel.model_validate_json(raw))

    @classmethod
    def from_model(cls, m: PlannedStepModel) -> PlannedStep:
        return cls(
            m.step_id,
            m.name,
            m.action,
            m.agent_id,
            m.domain,
            m.target_domain,
            m.access,
            m.idempotent,
            m.parameters,
            tuple(m.depends_on),
            m.on_failure,
            m.max_retries,
            m.timeout_seconds,
        )

    def model_dump_json(self) -> str:
        """The stored JSON form, exactly what ``PlannedStepModel.model_dump_json`` gives (same serializer)."""
        return to_json(self._asdict()).decode()


class SharedParameters(dict[str, Any]):
    """Parameters that identical planned steps share (one object, not one copy per step): read-only.

    Why: a generated plan repeats a few actions thousands of times, and a dict per step was a third of what
    planning left for the garbage collector to track. Nothing changes planned parameters in place (they are
    stored and sent as JSON); a change raises instead of silently changing the other steps. A ``dict`` to every
    reader and serializer (``dict(p)`` or ``copy.copy`` gives an ordinary one).
    """

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("planned parameters are shared between steps; copy them (dict(...)) to change them")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class PlannedSteps(list[PlannedStep]):
    """A plan's steps, as ``plan()`` returns them: a list that may carry what planning already worked out.

    ``plan()`` hands over each step's dependencies as plan positions (the sort computed them), flat: step ``i``'s
    are ``flat[starts[i]:starts[i + 1]]``. The compiler uses them only while the list still holds exactly the
    records they were computed for (``positions``), so a list changed in place, or a plan rebuilt from other
    records, is simply worked out again.
    """

    __slots__ = ("_for", "_positions")

    def __init__(self, steps: Iterable[PlannedStep] = ()) -> None:
        super().__init__(steps)
        self._for: tuple[PlannedStep, ...] = ()
        self._positions: tuple[list[int], list[int]] | None = None

    def hand_over(self, flat: list[int], starts: list[int]) -> None:
        """Keep each step's dependency positions (in plan order, each distinct, all earlier) with the records."""
        self._for = tuple(self)
        self._positions = (flat, starts)

    def positions(self) -> tuple[list[int], list[int]] | None:
        """The handed-over positions, if these are still the very records (in order) they describe."""
        given, records = self._positions, self._for
        if given is None or len(records) != len(self) or not all(map(is_, records, self)):
            return None
        return given


class WorkflowPlan(BaseModel):
    """A validated DAG ready to compile: steps in a topological order."""

    template_id: str | None
    name: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = Priority.MEDIUM
    steps: list[PlannedStep]

    def step(self, step_id: str) -> PlannedStep:
        for step in self.steps:
            if step.step_id == step_id:
                return step
        raise KeyError(step_id)
