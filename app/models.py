"""Every domain's tables in one metadata: the target of Alembic's autogenerate."""

from app.accounts.models import ApiToken, LoginFailure, User
from app.annotation.models import Annotation, AnnotationRevision, Assignment
from app.audit.models import AuditEvent
from app.db import Base
from app.exports.models import Export
from app.items.models import Item, Response
from app.projects.models import GuidelineVersion, Project, ProjectMembership
from app.training.models import QualificationAttempt, RaterExclusion

__all__ = [
    "Annotation",
    "AnnotationRevision",
    "ApiToken",
    "Assignment",
    "AuditEvent",
    "Base",
    "Export",
    "GuidelineVersion",
    "Item",
    "LoginFailure",
    "Project",
    "ProjectMembership",
    "QualificationAttempt",
    "RaterExclusion",
    "Response",
    "User",
]
