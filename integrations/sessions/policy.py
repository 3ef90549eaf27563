"""Who may see and change a student's sessions: exactly who may open the student's IEP.

Members see them (parents are viewers: they read their child's); owners and editors schedule
and change them; admins do everything; in development mode everyone does. The same rules
authorise the live topics `student:<id>` and `therapist:<user id>`.
"""

from __future__ import annotations

from collections.abc import Sequence

from collab_server.access import AccessStore, NotAMember
from collab_server.identity import Caller, Role


class StudentAccess:
    def __init__(self, access: AccessStore, *, development_mode: bool) -> None:
        self.access = access
        self.development_mode = development_mode

    async def role(self, caller: Caller, student_id: str) -> Role | None:
        if caller.is_admin or self.development_mode:
            return Role.OWNER
        member = await self.access.member(student_id, caller.user_id)
        return member.role if member is not None else None

    async def require_view(self, caller: Caller, student_id: str) -> Role:
        role = await self.role(caller, student_id)
        if role is None:
            raise NotAMember("not a member of this student's IEP")
        return role

    async def may_edit(self, caller: Caller, student_id: str) -> bool:
        role = await self.role(caller, student_id)
        return role is not None and role.can_write

    async def require_edit(self, caller: Caller, student_id: str) -> None:
        role = await self.require_view(caller, student_id)
        if not role.can_write:
            raise NotAMember("only the IEP's owners and editors may change its sessions")

    async def visible_students(self, caller: Caller) -> set[str] | None:
        """The students whose sessions `caller` may see; None: all of them."""
        if caller.is_admin or self.development_mode:
            return None
        return {d.name for d in await self.access.documents_for(caller.user_id)}

    async def parents(self, student_id: str) -> Sequence[str]:
        """The user ids who receive reminders and progress updates: the IEP's viewers."""
        return [m.user_id for m in await self.access.members(student_id) if m.role is Role.VIEWER]

    async def children_of(self, user_id: str) -> list[str]:
        """The students whose parent `user_id` is (the IEPs they are a viewer of)."""
        found = await self.access.memberships_of([user_id])
        return sorted(m.document for m in found if m.role is Role.VIEWER)


class StudentTopic:
    """`student:<id>`: the student's sessions, for whoever may see them."""

    def __init__(self, students: StudentAccess) -> None:
        self.students = students

    async def authorize(self, caller: Caller, key: str) -> None:
        await self.students.require_view(caller, key)


class TherapistTopic:
    """`therapist:<user id>`: a therapist's own week (admins and development: anyone's)."""

    def __init__(self, students: StudentAccess) -> None:
        self.students = students

    async def authorize(self, caller: Caller, key: str) -> None:
        if caller.user_id != key and not (caller.is_admin or self.students.development_mode):
            raise NotAMember("only your own week")
