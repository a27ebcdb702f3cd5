"""The bundled sample ServiceNow-like instance the built-in action handlers work on."""

from workers.sample.instance import SampleInstance
from workers.sample.store import Change

__all__ = ["Change", "SampleInstance"]
