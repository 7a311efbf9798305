"""SQL of the assignment engine: reclaiming leases, picking the next item, writing annotations."""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import QueryableAttribute, Session, defer
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.selectable import ExecutableReturnsRows

from app.accounts.models import ApiToken, User
from app.annotation.models import Annotation, Assignment
from app.db import TZDateTime, utcnow
from app.items.models import OPEN_ITEM, Item, Response
from app.projects.models import Project, ProjectMembership

# A value, or the bound parameter standing for it in a statement built once (see _lease_live_item_statement).
IdOrParam = uuid.UUID | sa.ColumnElement[Any]
TimeOrParam = datetime | sa.ColumnElement[Any]
IntOrParam = int | sa.ColumnElement[Any]

# The hot path is written twice where it pays: on PostgreSQL, data-modifying CTEs fold several steps into
# one round trip; SQLite, the embedded single-process mode, takes them one statement at a time.
#
# Its statements are built once, with bound parameters (functools.cache): building a statement and its
# cache key again on every call cost several percent of a worker's time. Parameters are named unlike any
# column: an UPDATE would take a parameter named after a column as a value to set.


# A project's guidelines and description can be long; the hot path never reads them, so it does not fetch
# them on every call (an access would load them).
_PROJECT_TEXTS_DEFERRED = (defer(Project.guidelines), defer(Project.description))


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_membership(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[Project, ProjectMembership] | None:
    """The project and the rater's membership, locked: one rater's concurrent requests on a project queue
    here (a double click gets one lease, not two)."""
    row = session.execute(_lock_membership_statement(), {"project": project_id, "rater": user_id}).first()
    return None if row is None else (row[0], row[1])


@functools.cache
def _lock_membership_statement() -> sa.Select[Project, ProjectMembership]:
    return (
        sa.select(Project, ProjectMembership)
        .join(ProjectMembership, ProjectMembership.project_id == Project.id)
        .where(
            Project.id == sa.bindparam("project", type_=sa.Uuid),
            ProjectMembership.user_id == sa.bindparam("rater", type_=sa.Uuid),
        )
        .options(*_PROJECT_TEXTS_DEFERRED)
        .with_for_update(of=ProjectMembership)
    )


# The API's two hot calls find the caller by their token in the statement that locks their membership or
# assignment: one round trip less each. The caller checks the token with accounts' usable_token and, when
# nothing is found, tells a bad token (401) from a missing membership or assignment (404) the usual way.
TokenUser = tuple[User, datetime | None]
AnySelect = TypeVar("AnySelect", bound=sa.Select[*tuple[Any, ...]])


def lock_membership_for_token(
    session: Session, project_id: uuid.UUID, token_hash: str
) -> tuple[TokenUser, Project, ProjectMembership] | None:
    row = session.execute(
        _lock_membership_for_token_statement(), {"project": project_id, "token_hash": token_hash}
    ).first()
    return None if row is None else ((row[0], row[1]), row[2], row[3])


@functools.cache
def _lock_membership_for_token_statement() -> sa.Select[User, datetime | None, Project, ProjectMembership]:
    statement = sa.select(User, ApiToken.expires_at, Project, ProjectMembership).select_from(
        ProjectMembership
    )
    return (
        _by_token(statement, ProjectMembership.user_id)
        .join(Project, Project.id == ProjectMembership.project_id)
        .where(Project.id == sa.bindparam("project", type_=sa.Uuid))
        .options(*_PROJECT_TEXTS_DEFERRED)
        .with_for_update(of=ProjectMembership)
    )


def _by_token(statement: AnySelect, user_id: QueryableAttribute[uuid.UUID]) -> AnySelect:
    """The statement restricted to the user, given by user_id, of the unrevoked token bound as token_hash."""
    return (
        statement.join(User, User.id == user_id)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == sa.bindparam("token_hash"), ApiToken.revoked_at.is_(None))
    )


def lock_assignment_for_token(
    session: Session, assignment_id: uuid.UUID, token_hash: str
) -> tuple[TokenUser, Assignment, Project] | None:
    """The assignment, only when it belongs to the token's user."""
    row = session.execute(
        _lock_assignment_for_token_statement(), {"assignment": assignment_id, "token_hash": token_hash}
    ).first()
    return None if row is None else ((row[0], row[1]), row[2], row[3])


@functools.cache
def _lock_assignment_for_token_statement() -> sa.Select[User, datetime | None, Assignment, Project]:
    statement = sa.select(User, ApiToken.expires_at, Assignment, Project).select_from(Assignment)
    return (
        _by_token(statement, Assignment.user_id)
        .join(Project, Project.id == Assignment.project_id)
        .where(Assignment.id == sa.bindparam("assignment", type_=sa.Uuid))
        .options(*_PROJECT_TEXTS_DEFERRED)
        .with_for_update(of=Assignment)
    )


def _expire_leases(project_id: IdOrParam, now: TimeOrParam) -> sa.Update:
    return (
        sa.update(Assignment)
        .where(
            Assignment.project_id == project_id, Assignment.status == "leased", Assignment.expires_at < now
        )
        .values(status="expired")
        .returning(Assignment.item_id, Assignment.purpose)
    )


def _current_lease(project_id: IdOrParam, user_id: IdOrParam, now: TimeOrParam) -> sa.Select[Assignment]:
    return (
        sa.select(Assignment)
        .where(
            Assignment.user_id == user_id,
            Assignment.project_id == project_id,
            Assignment.status == "leased",
            Assignment.expires_at >= now,
            # A lease on an item that has enough without it (the project now asks for fewer raters per item)
            # could only be refused: the rater moves on, and the lease keeps its slot until it expires.
            ~sa.exists().where(Item.id == Assignment.item_id, Item.is_complete),
        )
        .order_by(Assignment.created_at)
        .limit(1)
    )


def reclaim_and_find_lease(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID, now: datetime
) -> Assignment | None:
    """Return the items of the project's expired leases to the pool (their rows stay for late submits),
    then find the rater's current lease, if any."""
    if not _is_postgresql(session):
        reclaim_expired_leases(session, project_id, now)
        return session.scalar(_current_lease(project_id, user_id, now))
    return session.scalar(
        _reclaim_and_find_lease_statement(), {"project": project_id, "rater": user_id, "now": now}
    )


@functools.cache
def _reclaim_and_find_lease_statement() -> sa.Select[Assignment]:
    project_id, user_id = sa.bindparam("project", type_=sa.Uuid), sa.bindparam("rater", type_=sa.Uuid)
    now = sa.bindparam("now", type_=TZDateTime)
    expired = _expire_leases(project_id, now).cte("expired")
    per_item = (
        sa.select(expired.c.item_id, sa.func.count().label("n"))
        .where(expired.c.purpose == "live")
        .group_by(expired.c.item_id)
        .subquery("per_item")
    )
    released = (
        sa.update(Item)
        .where(Item.id == per_item.c.item_id)
        .values(assigned_count=Item.assigned_count - per_item.c.n)
        .cte("released")
    )
    # The lease found here is unexpired, so it is never one the CTEs above just expired.
    return _current_lease(project_id, user_id, now).add_cte(expired, released)


def reclaim_expired_leases(session: Session, project_id: uuid.UUID, now: datetime) -> int:
    """Return the items of expired leases to the pool; their rows stay for late submits."""
    expired = session.execute(_expire_leases(project_id, now)).all()
    per_item = Counter(item_id for item_id, purpose in expired if purpose == "live")
    if per_item:
        session.execute(
            sa.update(Item)
            .where(Item.id == sa.bindparam("item_id_"))
            .values(assigned_count=Item.assigned_count - sa.bindparam("n")),
            [{"item_id_": item_id, "n": n} for item_id, n in per_item.items()],
        )
    return len(expired)


def _not_taken_by(user_id: IdOrParam, attempt: int) -> sa.ColumnElement[bool]:
    return ~sa.exists().where(
        Assignment.item_id == Item.id,
        Assignment.user_id == user_id,
        Assignment.attempt == attempt,
        Assignment.status != "expired",
    )


# Open items a pick looks through, fullest first, before it takes the emptiest open item instead.
FULLEST_FIRST_WINDOW = 200


def _live_candidates(
    project_id: IdOrParam, user_id: IdOrParam, annotations_per_item: IntOrParam
) -> tuple[sa.Select[uuid.UUID], sa.Select[uuid.UUID]]:
    """The two picks of a live item this rater has not had, in the order to try them; SKIP LOCKED lets
    concurrent raters pass each other.

    First the fullest open item among the FULLEST_FIRST_WINDOW fullest, so items are finished before new
    ones are started. A rater far ahead of the others finds their own half-done items at the top of that
    order, and skipping them cost a probe each, on every pick (2,022 of them took 3.9 ms): past the
    window, the emptiest open item, which for a rater alone is just the item they need.
    """
    is_open = (
        Item.project_id == project_id,
        Item.purpose == "live",
        OPEN_ITEM,
        Item.assigned_count < annotations_per_item,
    )
    window = (
        sa.select(Item.id, Item.annotation_count, Item.random_key)
        .where(*is_open)
        .order_by(Item.annotation_count.desc(), Item.random_key.desc())
        .limit(FULLEST_FIRST_WINDOW)
        .subquery("window")
    )
    # The window leads the join, so the items are found by key; the conditions on the locked row stay, as
    # PostgreSQL checks them again on a row another rater changed meanwhile.
    fullest = (
        sa.select(Item.id)
        .select_from(window)
        .join(Item, Item.id == window.c.id)
        .where(*is_open, _not_taken_by(user_id, 0))
        .order_by(window.c.annotation_count.desc(), window.c.random_key.desc())
        .limit(1)
        .with_for_update(skip_locked=True, of=Item)
    )
    emptiest = (
        sa.select(Item.id)
        .where(*is_open, _not_taken_by(user_id, 0))
        .order_by(Item.annotation_count, Item.random_key)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return fullest, emptiest


def pick_live_item(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID, annotations_per_item: int
) -> uuid.UUID | None:
    for candidates in _live_candidates(project_id, user_id, annotations_per_item):
        found = session.scalar(candidates)
        if found is not None:
            return found
    return None


def lease_live_item(
    session: Session,
    *,
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    annotations_per_item: int,
    expires_at: datetime,
    permutation: list[int],
) -> Assignment | None:
    """Pick the next live item for this rater and lease it; its responses are shown in the order the
    permutation gives their positions (see ordered_response_ids)."""
    if not _is_postgresql(session):
        item_id = pick_live_item(session, project_id, user_id, annotations_per_item)
        if item_id is None:
            return None
        return lease_item(
            session,
            project_id=project_id,
            item_id=item_id,
            user_id=user_id,
            attempt=0,
            purpose="live",
            display_order=ordered_response_ids(session, item_id, permutation),
            expires_at=expires_at,
        )
    parameters = {
        "project": project_id,
        "rater": user_id,
        "annotations_per_item": annotations_per_item,
        "permutation": permutation,
        "lease_id": uuid.uuid4(),
        "until": expires_at,
        "now": utcnow(),
    }
    return session.scalars(
        _lease_live_item_statement(), parameters, execution_options={"populate_existing": True}
    ).one_or_none()


@functools.cache
def _lease_live_item_statement() -> ExecutableReturnsRows:
    """One round trip: pick and lock the item, take a slot on it, insert the lease (or renew the rater's
    own expired lease of it) with the responses in the permutation's order."""
    project_id, user_id = sa.bindparam("project", type_=sa.Uuid), sa.bindparam("rater", type_=sa.Uuid)
    fullest, emptiest = _live_candidates(project_id, user_id, sa.bindparam("annotations_per_item"))
    # COALESCE runs the second pick only when the first finds nothing (UNION takes no FOR UPDATE).
    picked = sa.select(
        sa.func.coalesce(fullest.scalar_subquery(), emptiest.scalar_subquery()).label("id")
    ).cte("picked")
    taken = (
        sa.update(Item)
        .where(Item.id == picked.c.id)
        .values(assigned_count=Item.assigned_count + 1)
        .returning(Item.id)
        .cte("taken")
    )
    slot = sa.func.array_position(
        sa.bindparam("permutation", type_=postgresql.ARRAY(sa.Integer)), Response.position
    )
    display_order = (
        sa.select(
            sa.func.jsonb_agg(
                postgresql.aggregate_order_by(
                    sa.cast(Response.id, sa.Text), slot.asc().nulls_last(), Response.position
                )
            )
        )
        .where(Response.item_id == taken.c.id)
        .scalar_subquery()
    )
    source = sa.select(
        sa.bindparam("lease_id", type_=sa.Uuid),
        project_id,
        taken.c.id,
        user_id,
        sa.literal(0),
        sa.literal("live"),
        sa.literal("leased"),
        display_order,
        sa.bindparam("until", type_=TZDateTime),
        sa.bindparam("now", type_=TZDateTime),
    )
    insert = postgresql.insert(Assignment).from_select(
        [
            "id",
            "project_id",
            "item_id",
            "user_id",
            "attempt",
            "purpose",
            "status",
            "display_order",
            "expires_at",
            "created_at",
        ],
        source,
    )
    upsert = (
        insert.on_conflict_do_update(
            index_elements=["item_id", "user_id", "attempt"],
            set_={
                "status": "leased",
                "display_order": insert.excluded.display_order,
                "expires_at": insert.excluded.expires_at,
                "finished_at": None,
            },
        )
        .returning(*Assignment.__table__.columns)
        .add_cte(picked, taken)
    )
    # Wrapped in a SELECT so that parameters bind the statement (given to an INSERT, the ORM would read
    # them as rows to insert) and the returned row loads as an Assignment.
    return sa.select(Assignment).from_statement(upsert)


def pick_unseen_item(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID, purpose: str, attempt: int
) -> uuid.UUID | None:
    """A gold or training item this rater has not answered (in this attempt)."""
    order = Item.seq if purpose == "training" else Item.random_key
    return session.scalar(
        sa.select(Item.id)
        .where(
            Item.project_id == project_id,
            Item.purpose == purpose,
            OPEN_ITEM,
            _not_taken_by(user_id, attempt),
        )
        .order_by(order)
        .limit(1)
    )


def lease_item(
    session: Session,
    *,
    project_id: uuid.UUID,
    item_id: uuid.UUID,
    user_id: uuid.UUID,
    attempt: int,
    purpose: str,
    display_order: list[str],
    expires_at: datetime,
) -> Assignment:
    """Insert the lease, or renew this rater's own expired lease of the same item."""
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "project_id": project_id,
        "item_id": item_id,
        "user_id": user_id,
        "attempt": attempt,
        "purpose": purpose,
        "status": "leased",
        "display_order": display_order,
        "expires_at": expires_at,
        "created_at": utcnow(),
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(Assignment).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["item_id", "user_id", "attempt"],
        set_={
            "status": "leased",
            "display_order": display_order,
            "expires_at": expires_at,
            "finished_at": None,
        },
    ).returning(Assignment)
    assignment: Assignment = session.scalars(statement, execution_options={"populate_existing": True}).one()
    if purpose == "live":
        session.execute(
            sa.update(Item).where(Item.id == item_id).values(assigned_count=Item.assigned_count + 1)
        )
    return assignment


def load_item_with_responses(session: Session, item_id: uuid.UUID) -> tuple[Item, dict[str, Response]]:
    rows = session.execute(_item_with_responses_statement(), {"item": item_id}).all()
    if not rows:
        raise LookupError(f"item {item_id} does not exist")
    return rows[0][0], {str(response.id): response for _, response in rows if response is not None}


@functools.cache
def _item_with_responses_statement() -> sa.Select[Item, Response]:
    return (
        sa.select(Item, Response)
        .outerjoin(Response, Response.item_id == Item.id)
        .where(Item.id == sa.bindparam("item", type_=sa.Uuid))
    )


def ordered_response_ids(session: Session, item_id: uuid.UUID, permutation: list[int]) -> list[str]:
    """The item's response ids in display order: slot i shows the response at position permutation[i];
    positions the permutation does not name (more responses than slots) follow in their own order."""
    by_position = list(
        session.scalars(sa.select(Response.id).where(Response.item_id == item_id).order_by(Response.position))
    )
    shown = [by_position[p] for p in permutation if p < len(by_position)]
    shown += by_position[len(permutation) :]
    return [str(r) for r in shown]


def lock_assignment_with_project(
    session: Session, assignment_id: uuid.UUID
) -> tuple[Assignment, Project] | None:
    row = session.execute(_lock_assignment_with_project_statement(), {"assignment": assignment_id}).first()
    return None if row is None else (row[0], row[1])


@functools.cache
def _lock_assignment_with_project_statement() -> sa.Select[Assignment, Project]:
    return (
        sa.select(Assignment, Project)
        .join(Project, Project.id == Assignment.project_id)
        .where(Assignment.id == sa.bindparam("assignment", type_=sa.Uuid))
        .options(*_PROJECT_TEXTS_DEFERRED)
        .with_for_update(of=Assignment)
    )


def _per_item_now(project_id: IdOrParam) -> sa.Subquery:
    """The project's number of raters per item as it stands, not as the submit read it at its start. FOR SHARE
    waits for an admin's save of the project (which locks the row) to commit and then reads the saved number,
    and an admin's save waits for submits in flight: a number raised mid-campaign never lets a late submit mark
    an item complete by the old number."""
    return (
        sa.select(Project.annotations_per_item.label("n"))
        .where(Project.id == project_id)
        .with_for_update(read=True)
        .subquery("per_item_now")
    )


def _count_vote(item_id: IdOrParam, project_id: IdOrParam, slot_returned: IntOrParam) -> sa.Update:
    """Count a vote on its item unless the item is already complete: one guarded UPDATE, so concurrent submits
    on the item queue on its row and each sees the count the one before it left. A lease that expired and was
    reclaimed takes its slot back (slot_returned is 1)."""
    # Read once, in the UPDATE's FROM, for both the guard and the mark.
    per_item = _per_item_now(project_id).c.n
    return (
        sa.update(Item)
        # The mark as well as the count: a project's new number of raters per item marks its items at once.
        .where(Item.id == item_id, OPEN_ITEM, Item.annotation_count < per_item)
        .values(
            annotation_count=Item.annotation_count + 1,
            assigned_count=Item.assigned_count + slot_returned,
            is_complete=Item.annotation_count + 1 >= per_item,
        )
        .returning(Item.id)
        # The hot path never holds the Item in the session: nothing to bring up to date.
        .execution_options(synchronize_session=False)
    )


def add_submitted(
    session: Session, annotation: Annotation, assignment: Assignment, finished_at: datetime
) -> None:
    """Add the annotation and mark its assignment submitted; both are written at the next flush."""
    session.add(annotation)
    assignment.status, assignment.finished_at = "submitted", finished_at


# What a submit writes; gold results and corrections come later.
_STORED_COLUMNS = tuple(
    column.name for column in Annotation.__table__.columns if column.name not in ("gold_result", "updated_at")
)


def store_live_annotation(
    session: Session,
    annotation: Annotation,
    assignment: Assignment,
    *,
    finished_at: datetime,
) -> bool:
    """Count the annotation on its live item, store it and mark its assignment submitted; False, with nothing
    written, when the item is already complete."""
    slot_returned = 0 if assignment.status == "leased" else 1
    if not _is_postgresql(session):
        counted = session.execute(
            _count_vote(annotation.item_id, annotation.project_id, slot_returned)
        ).first()
        if counted is None:
            return False
        add_submitted(session, annotation, assignment, finished_at)
        return True
    parameters = {f"a_{column}": getattr(annotation, column) for column in _STORED_COLUMNS}
    parameters |= {"slot_returned": slot_returned, "finished": finished_at}
    stored = session.scalar(_store_live_annotation_statement(), parameters)
    if not stored:
        return False
    # Written by the statement: the loaded assignment only needs to know, not to write it again.
    set_committed_value(assignment, "status", "submitted")
    set_committed_value(assignment, "finished_at", finished_at)
    return True


@functools.cache
def _store_live_annotation_statement() -> sa.Select[Any]:
    """PostgreSQL, one round trip: count the vote, insert the annotation and finish the assignment, the last
    two only when the count was taken."""
    table = Annotation.__table__
    values = {name: sa.bindparam(f"a_{name}", type_=table.c[name].type) for name in _STORED_COLUMNS}
    counted = _count_vote(
        values["item_id"],
        values["project_id"],
        sa.bindparam("slot_returned", type_=sa.Integer),
    ).cte("counted")
    stored = (
        sa.insert(Annotation)
        .from_select(list(_STORED_COLUMNS), sa.select(*values.values()).select_from(counted))
        .returning(Annotation.id)
        .cte("stored")
    )
    finished = (
        sa.update(Assignment)
        .where(Assignment.id == values["assignment_id"], sa.exists(sa.select(stored.c.id)))
        .values(status="submitted", finished_at=sa.bindparam("finished", type_=TZDateTime))
        .cte("finished")
    )
    # PostgreSQL runs every data-modifying CTE, read or not; the count says whether anything was written.
    return sa.select(sa.func.count()).select_from(stored).add_cte(counted, finished)


def lock_assignment(session: Session, assignment_id: uuid.UUID) -> Assignment | None:
    return session.scalar(sa.select(Assignment).where(Assignment.id == assignment_id).with_for_update())


def lock_item(session: Session, item_id: uuid.UUID) -> Item:
    return session.execute(sa.select(Item).where(Item.id == item_id).with_for_update()).scalar_one()


def annotation_for_assignment(session: Session, assignment_id: uuid.UUID) -> Annotation | None:
    return session.scalar(sa.select(Annotation).where(Annotation.assignment_id == assignment_id))


def annotation_by_key(session: Session, user_id: uuid.UUID, key: str) -> Annotation | None:
    return session.scalar(
        sa.select(Annotation).where(Annotation.user_id == user_id, Annotation.idempotency_key == key)
    )


def count_user_annotations_since(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID, since: datetime
) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count(Annotation.id)).where(
                Annotation.project_id == project_id,
                Annotation.user_id == user_id,
                Annotation.created_at >= since,
                Annotation.purpose != "training",
            )
        )
        or 0
    )


def count_raters_holding_leases(
    session: Session, project_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, int]:
    """Per project, how many raters hold an unexpired lease: who is on an item now (the leases index)."""
    rows = session.execute(
        sa.select(Assignment.project_id, sa.func.count(sa.distinct(Assignment.user_id)))
        .where(
            Assignment.project_id.in_(project_ids),
            Assignment.status == "leased",
            Assignment.expires_at >= now,
        )
        .group_by(Assignment.project_id)
    )
    return {project_id: int(count) for project_id, count in rows}


def count_open_items(session: Session, project_id: uuid.UUID) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count(Item.id)).where(
                Item.project_id == project_id, Item.purpose == "live", OPEN_ITEM
            )
        )
        or 0
    )


def recent_annotations(
    session: Session, user_id: uuid.UUID, limit: int = 20, project_id: uuid.UUID | None = None
) -> list[Annotation]:
    query = sa.select(Annotation).where(Annotation.user_id == user_id, Annotation.purpose != "training")
    if project_id is not None:
        query = query.where(Annotation.project_id == project_id)
    return list(session.scalars(query.order_by(Annotation.created_at.desc()).limit(limit)))
