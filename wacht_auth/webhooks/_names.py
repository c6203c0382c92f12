"""The names of the events Wacht delivers, as constants a type checker knows.

The list is Wacht's documented one (47 names, plus ``test.webhook`` from the console's "send
test event"). A name that is not here still verifies and is delivered: Wacht adds events
(agent hook events among them), and an app must not lose them because this list is older.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["EventType"]


class EventType(str, Enum):
    """A documented Wacht event name; each member equals its string (``"user.created"``).

    ``event.type == EventType.USER_CREATED`` and ``match event.type: case
    EventType.USER_CREATED: ...`` both work on the plain string of
    :attr:`~wacht_auth.webhooks.Event.type`; :attr:`~wacht_auth.webhooks.Event.known_type`
    gives the member, or ``None`` for a name this release does not list.
    """

    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_DELETED = "user.deleted"
    USER_EMAIL_ADDED = "user.email.added"
    USER_EMAIL_REMOVED = "user.email.removed"
    USER_EMAIL_VERIFIED = "user.email.verified"
    USER_PHONE_ADDED = "user.phone.added"
    USER_PHONE_REMOVED = "user.phone.removed"
    USER_PHONE_VERIFIED = "user.phone.verified"
    USER_PASSWORD_UPDATED = "user.password.updated"
    USER_MFA_ENABLED = "user.mfa.enabled"
    USER_MFA_DISABLED = "user.mfa.disabled"
    SESSION_CREATED = "session.created"
    SESSION_DELETED = "session.deleted"
    SESSION_EXPIRED = "session.expired"
    ORGANIZATION_CREATED = "organization.created"
    ORGANIZATION_UPDATED = "organization.updated"
    ORGANIZATION_DELETED = "organization.deleted"
    ORGANIZATION_MEMBER_ADDED = "organization.member.added"
    ORGANIZATION_MEMBER_REMOVED = "organization.member.removed"
    ORGANIZATION_MEMBER_ROLE_UPDATED = "organization.member.role.updated"
    ORGANIZATION_INVITATION_CREATED = "organization.invitation.created"
    ORGANIZATION_INVITATION_ACCEPTED = "organization.invitation.accepted"
    ORGANIZATION_INVITATION_REVOKED = "organization.invitation.revoked"
    WORKSPACE_CREATED = "workspace.created"
    WORKSPACE_UPDATED = "workspace.updated"
    WORKSPACE_DELETED = "workspace.deleted"
    WORKSPACE_MEMBER_ADDED = "workspace.member.added"
    WORKSPACE_MEMBER_REMOVED = "workspace.member.removed"
    WORKSPACE_MEMBER_ROLE_UPDATED = "workspace.member.role.updated"
    WORKSPACE_INVITATION_CREATED = "workspace.invitation.created"
    WORKSPACE_INVITATION_ACCEPTED = "workspace.invitation.accepted"
    WORKSPACE_INVITATION_REVOKED = "workspace.invitation.revoked"
    API_KEY_CREATED = "api_key.created"
    API_KEY_DELETED = "api_key.deleted"
    API_KEY_ROTATED = "api_key.rotated"
    AGENT_CREATED = "agent.created"
    AGENT_UPDATED = "agent.updated"
    AGENT_DELETED = "agent.deleted"
    AGENT_EXECUTION_STARTED = "agent.execution.started"
    AGENT_EXECUTION_COMPLETED = "agent.execution.completed"
    AGENT_EXECUTION_FAILED = "agent.execution.failed"
    AGENT_MODEL_USAGE = "agent.model.usage"
    AGENT_THREAD_MESSAGE = "agent.thread.message"
    AGENT_THREAD_PLATFORM_EVENT = "agent.thread.platform_event"
    WAITLIST_ENTRY_CREATED = "waitlist.entry.created"
    WAITLIST_ENTRY_APPROVED = "waitlist.entry.approved"
    TEST_WEBHOOK = "test.webhook"

    def __str__(self) -> str:
        return self.value
