"""HTML routes of the agreement domain: the agreement dashboard and its plots as SVG and CSV downloads."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from app.accounts.dependencies import DbSession, PageAdmin, verify_csrf
from app.agreement import plots, service
from app.errors import NotFound
from app.i18n import gettext as _
from app.projects import service as projects_service
from app.projects.models import Project
from app.routing import TransactionalRoute
from app.templating import render

router = APIRouter(
    route_class=TransactionalRoute, include_in_schema=False, dependencies=[Depends(verify_csrf)]
)

NBoot = Annotated[int, Query(ge=0, le=5000)]
Seed = Annotated[int, Query(ge=0, le=2**32 - 1)]
PlotName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,60}$")]
LEADERBOARD_BOOT = 200
# A spreadsheet runs cells that start with these as formulas; usernames and model names are untrusted.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _plot_views(
    figures: dict[str, Any] | None, board: dict[str, Any] | None
) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """Every plot of the dashboard by name: (SVG, the rows it was drawn from)."""
    views: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    if figures is not None:
        questions = figures["questions"]
        views["agreement"] = (plots.agreement_chart(questions), _agreement_rows(questions))
        titles = {q["name"]: q["title"] for q in questions}
        views["by-week"] = (plots.weekly_chart(figures["by_week"], titles), _flat(figures["by_week"]))
        pairs = figures["rater_pairs"]
        views["rater-kappa"] = (plots.kappa_heatmap(pairs, figures["rater_pairs_question"]), pairs)
        views["position-bias"] = (
            plots.position_bias_chart(figures["position_bias"]),
            figures["position_bias"],
        )
        for q in questions:
            if q["distribution"]:
                views[f"distribution-{q['name']}"] = (
                    plots.distribution_chart(q["title"], q["distribution"]),
                    q["distribution"],
                )
            if q.get("strength_distribution"):
                title = _("%(question)s · strength", question=q["title"])
                views[f"strength-{q['name']}"] = (
                    plots.distribution_chart(title, q["strength_distribution"]),
                    q["strength_distribution"],
                )
    if board is not None:
        views["leaderboard"] = (plots.leaderboard_chart(board["models"]), board["models"])
    return views


def _agreement_rows(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for q in questions:
        statistic, value, ci, reason = plots.headline(q)
        agreement = q["ci"].get("percent_agreement") or {}
        rows.append(
            {
                "question": q["name"],
                "kind": q["kind"],
                "statistic": statistic,
                "value": value,
                "low": (ci or {}).get("low"),
                "high": (ci or {}).get("high"),
                "percent_agreement": q["percent_agreement"],
                "percent_agreement_low": agreement.get("low"),
                "percent_agreement_high": agreement.get("high"),
                "fleiss_kappa": q["fleiss_kappa"],
                "n_units": q["n_units"],
                "n_annotations": q["n_annotations"],
                "reason": reason if value is None else None,
            }
        )
    return rows


def _flat(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if not isinstance(v, dict)} for row in rows]


def _csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: f"'{v}" if isinstance(v, str) and v.startswith(FORMULA_START) else v for k, v in row.items()}
        )
    return buffer.getvalue()


def _project(session: Session, project_id: uuid.UUID, admin: Any) -> Project:
    return projects_service.get_project_for_admin(session, project_id, admin)


@router.get("/projects/{project_id}/agreement")
def agreement_page(
    request: Request,
    project_id: uuid.UUID,
    admin: PageAdmin,
    session: DbSession,
    n_boot: NBoot = 1000,
    seed: Seed = 0,
) -> Response:
    project = _project(session, project_id, admin)
    figures = service.project_agreement(session, project, n_boot=n_boot, seed=seed)
    board = service.leaderboard(session, project, n_boot=min(n_boot, LEADERBOARD_BOOT), seed=seed)
    views = _plot_views(figures, board)
    context = {
        "project": project,
        "figures": figures,
        "board": board,
        # plots.py escapes every label it draws, so the SVG text is safe to embed as markup.
        "plots": {name: Markup(svg) for name, (svg, _rows) in views.items()},
        "query": f"?n_boot={n_boot}&seed={seed}",
    }
    return render(request, "agreement/dashboard.html", context)


@router.get("/projects/{project_id}/agreement/glance")
def agreement_glance(
    request: Request, project_id: uuid.UUID, admin: PageAdmin, session: DbSession
) -> Response:
    """The project card's agreement figure, fetched after the list has shown (it reads every answer)."""
    project = _project(session, project_id, admin)
    glance = service.agreement_at_a_glance(session, project)
    statistic, value = plots.headline(glance)[:2] if glance is not None else ("", None)
    context = {"project": project, "glance": glance, "statistic": statistic, "value": value}
    return render(request, "agreement/_glance.html", context)


def _plot_source(name: str) -> tuple[bool, bool]:
    """Which computations a plot needs: (agreement figures, leaderboard)."""
    return name != "leaderboard", name == "leaderboard"


def _one_plot(
    session: Session, project: Project, name: str, n_boot: int, seed: int
) -> tuple[str, list[dict[str, Any]]]:
    needs_figures, needs_board = _plot_source(name)
    figures = service.project_agreement(session, project, n_boot=n_boot, seed=seed) if needs_figures else None
    board = (
        service.leaderboard(session, project, n_boot=min(n_boot, LEADERBOARD_BOOT), seed=seed)
        if needs_board
        else None
    )
    view = _plot_views(figures, board).get(name)
    if view is None:
        raise NotFound("No such plot.")
    return view


def _download(name: str, suffix: str, media_type: str, build: Callable[[], str]) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="agreement-{name}.{suffix}"'}
    return Response(build(), media_type=media_type, headers=headers)


@router.get("/projects/{project_id}/agreement/plots/{name}.svg")
def plot_svg(
    project_id: uuid.UUID,
    name: PlotName,
    admin: PageAdmin,
    session: DbSession,
    n_boot: NBoot = 1000,
    seed: Seed = 0,
) -> Response:
    project = _project(session, project_id, admin)
    svg, _rows = _one_plot(session, project, name, n_boot, seed)
    return _download(name, "svg", "image/svg+xml", lambda: '<?xml version="1.0" encoding="UTF-8"?>\n' + svg)


@router.get("/projects/{project_id}/agreement/plots/{name}.csv")
def plot_csv(
    project_id: uuid.UUID,
    name: PlotName,
    admin: PageAdmin,
    session: DbSession,
    n_boot: NBoot = 1000,
    seed: Seed = 0,
) -> Response:
    project = _project(session, project_id, admin)
    _svg, rows = _one_plot(session, project, name, n_boot, seed)
    return _download(name, "csv", "text/csv; charset=utf-8", lambda: _csv(rows))
