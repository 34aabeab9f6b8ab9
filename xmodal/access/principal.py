"""Who is asking: a principal (user), its groups and role, and access-list entries."""

from __future__ import annotations

import re
from dataclasses import dataclass

from xmodal.errors import InvalidArgumentError

PUBLIC = "public"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def check_name(name: str, what: str = "principal") -> str:
    name = str(name).strip()
    if not _NAME.match(name):
        raise InvalidArgumentError(
            f"invalid {what} name {name[:80]!r}: use letters, digits, '_', '.', '@', '-' (max 64 chars)"
        )
    if name.lower() == PUBLIC:  # in an access list, bare "public" means everyone with a key
        raise InvalidArgumentError(f"'{PUBLIC}' is reserved (it means everyone); choose another {what} name")
    return name


def parse_entry(raw: str) -> str:
    """``alice`` / ``user:alice`` -> ``user:alice``; ``group:eng``; ``public`` (anyone with a key)."""
    text = str(raw).strip()
    if text.lower() in (PUBLIC, "*"):
        return PUBLIC
    kind, sep, name = text.partition(":")
    if not sep:
        return "user:" + check_name(text)
    kind = kind.strip().lower()
    if kind not in ("user", "group"):
        raise InvalidArgumentError(f"access entry {text[:80]!r} must be NAME, user:NAME, group:NAME or public")
    return f"{kind}:{check_name(name, kind)}"


def parse_access(values: list[str] | str | None) -> list[str] | None:
    """An access list from a list or a comma-separated string; None when not given."""
    if values is None:
        return None
    parts = values.split(",") if isinstance(values, str) else [p for v in values for p in str(v).split(",")]
    entries = sorted({parse_entry(p) for p in parts if p.strip()})
    if not entries:
        raise InvalidArgumentError("the access list is empty; give principals, groups or 'public'")
    return entries


@dataclass(frozen=True)
class Principal:
    name: str
    groups: tuple[str, ...] = ()
    admin: bool = False
    key_id: str = ""

    @property
    def tokens(self) -> frozenset[str]:
        """Access-list entries that let this principal see an item."""
        return frozenset({PUBLIC, f"user:{self.name}", *(f"group:{g}" for g in self.groups)})

    @property
    def cache_key(self) -> str:
        return f"{self.name}|{','.join(sorted(self.groups))}|{int(self.admin)}"

    def to_dict(self) -> dict[str, object]:
        return {"principal": self.name, "groups": list(self.groups), "admin": self.admin, "key_id": self.key_id}
