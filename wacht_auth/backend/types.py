"""The Backend API's answer and argument types: a TypedDict per object schema, a ``Literal``
alias per enumeration, generated from the operations table (``make generate``).

Annotate with them (``from wacht_auth.backend.types import UserDetails``); at run time an
answer is a plain ``dict`` (a :class:`~wacht_auth.backend.Record`).
"""

from ._types import *  # noqa: F403
from ._types import __all__ as __all__
