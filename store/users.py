"""The dashboard's people and their roles, in the store (so every dashboard replica sees the same).

Roles are ordered: a ``viewer`` reads, an ``analyst`` also acknowledges, comments and silences,
an ``admin`` also ends anyone's silence. Passwords arrive hashed (the dashboard hashes them with
Werkzeug's scrypt); a user signed in by a single sign-on proxy has none. Blocking (SQLAlchemy).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine

from .engine import create_store_engine
from .schema import users

ROLES = ("viewer", "analyst", "admin")
NAME = re.compile(r"[\w.@+-]{1,100}")


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str | None
    disabled: bool

    def may(self, role: str) -> bool:
        """True if this user's role is ``role`` or above it."""
        return not self.disabled and ROLES.index(self.role) >= ROLES.index(role)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


class Users:
    def __init__(self, url_or_engine: str | Engine, migrate: bool = True) -> None:
        self.engine = create_store_engine(url_or_engine, migrate) if isinstance(url_or_engine, str) else url_or_engine

    def add(self, name: str, role: str, password_hash: str | None, created_by: str) -> User:
        """A new user; refuses a name taken, malformed or over 100 characters, and an unknown role."""
        if not NAME.fullmatch(name):
            raise ValueError(f"user name {name!r}: letters, digits and . @ + - _ only, at most 100")
        check_role(role)
        with self.engine.begin() as conn:
            if conn.execute(select(users.c.name).where(users.c.name == name)).first() is not None:
                raise ValueError(f"user {name} exists already (riskpulse users role|password to change it)")
            conn.execute(users.insert().values(name=name, role=role, password_hash=password_hash, disabled=False,
                                               created_by=created_by, created_at=time.time()))
        return User(name, role, password_hash, False)

    def get(self, name: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users.c.name, users.c.role, users.c.password_hash, users.c.disabled)
                               .where(users.c.name == name)).first()
        return User(row[0], row[1], row[2], bool(row[3])) if row else None

    def all(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users.c.name, users.c.role, users.c.password_hash, users.c.disabled)
                                .order_by(users.c.name)).all()
        return [User(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())

    def _change(self, name: str, **values: object) -> None:
        with self.engine.begin() as conn:
            if conn.execute(update(users).where(users.c.name == name).values(**values)).rowcount == 0:
                raise ValueError(f"no user {name} (riskpulse users list)")

    def set_role(self, name: str, role: str) -> None:
        self._change(name, role=check_role(role))

    def set_password_hash(self, name: str, password_hash: str | None) -> None:
        self._change(name, password_hash=password_hash)

    def time_zone(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(users.c.time_zone).where(users.c.name == name)).scalar()

    def set_time_zone(self, name: str, zone: str | None) -> bool:
        """Keep ``name``'s time zone; False if the store has no such user (a sign-on user it does not know)."""
        with self.engine.begin() as conn:
            return conn.execute(update(users).where(users.c.name == name).values(time_zone=zone)).rowcount > 0

    def set_disabled(self, name: str, disabled: bool) -> None:
        """A disabled user is signed out at their next request and cannot sign in."""
        self._change(name, disabled=disabled)

    def remove(self, name: str) -> None:
        with self.engine.begin() as conn:
            if conn.execute(delete(users).where(users.c.name == name)).rowcount == 0:
                raise ValueError(f"no user {name} (riskpulse users list)")
