"""Who may do what in which channel: bindings, roles, approvals and the audit log."""

from permissions.approvals import Approval, ApprovalStore, ClaimResult
from permissions.audit import AuditLog
from permissions.model import Binding, ChannelPolicy, IncidentChannel, ProtectionOverride
from permissions.policy import Decision, Target, decide, may_approve
from permissions.roles import Role
from permissions.store import PermissionStore, migrate

__all__ = [
    "Approval",
    "ApprovalStore",
    "AuditLog",
    "Binding",
    "ChannelPolicy",
    "ClaimResult",
    "Decision",
    "IncidentChannel",
    "PermissionStore",
    "ProtectionOverride",
    "Role",
    "Target",
    "decide",
    "may_approve",
    "migrate",
]
