"""The analytics page: customer equity, the latest run's models, charts, decliners, and "Run analysis"."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from patron.analytics import equity, service
from patron.api.deps import PathId, SessionDep
from patron.errors import PatronError, ValidationFailed
from patron.users.permissions import Permission
from patron.users.schemas import Principal
from patron.validation import MAX_ID
from patron.web.auth import PageReader, require_page
from patron.web.forms import FormDep, PageResponse, field_errors, text
from patron.web.templating import label, render

router = APIRouter(prefix="/analytics", include_in_schema=False)

PageAnalyst = Annotated[Principal, Depends(require_page(Permission.run_analysis))]
RUNS_SHOWN = 20
NOTICE_KEY = "analytics_notice"
FORM_FIELDS = ("as_of", "model", "horizon_days", "discount_rate", "margin", "holdout_days")
DEFAULT_FORM = {
    "as_of": "",
    "model": "auto",
    "horizon_days": "365",
    "discount_rate": "10",
    "margin": "100",
    "holdout_days": "",
}
MODEL_OPTIONS = [
    ("auto", "Automatic (best on the holdout check)"),
    ("bgnbd", "BG/NBD"),
    ("pareto", "Pareto/NBD"),
]


@router.get("", response_class=HTMLResponse)
def analytics(
    request: Request,
    session: SessionDep,
    _: PageReader,
    run: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> HTMLResponse:
    """Equity KPIs, charts and decliners as of the latest finished run (or ?run=id), and the run form."""
    notice = request.session.pop(NOTICE_KEY, None)
    return _page(request, session, run_id=run, notice=notice if isinstance(notice, str) else None)


@router.post("/runs", response_class=HTMLResponse)
def run_analysis(request: Request, session: SessionDep, principal: PageAnalyst, form: FormDep) -> Response:
    """Run the analysis with the form's options (synchronously) and show its results."""
    try:
        options = _options(form)
        run = service.analyze(session, **options, actor=principal.email)
    except PatronError as exc:
        values = {name: text(form, name) for name in FORM_FIELDS}
        page = _page(request, session, values=values, errors=_errors(exc), status=exc.status)
        raise PageResponse(page) from None
    request.session[NOTICE_KEY] = _notice(run)
    return RedirectResponse(f"/analytics?run={run.id}", status_code=303)


@router.get("/runs/{run_id}/tracking.png")
def tracking_png(session: SessionDep, _: PageReader, run_id: PathId) -> Response:
    """The run's holdout tracking plot as stored by the run."""
    png = service.tracking_png(session, run_id)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, no-store"})


# --------------------------------------------------------------------------- helpers


def _page(
    request: Request,
    session,
    *,
    run_id: int | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    report = equity.equity_report(session, run_id=run_id)
    runs = service.list_runs(session, limit=RUNS_SHOWN).items
    # A newer run that failed or is still going is worth saying out loud above older figures.
    newest = runs[0] if runs else None
    if newest is None or newest.status in ("completed", "partial") or (report and newest.id < report.run.id):
        newest = None
    return render(
        request,
        "analytics/index.html",
        {
            "title": "Analytics",
            "active": "analytics",
            "report": report,
            "summary": equity.describe_run(report.run) if report else None,
            "charts": chart_data(report) if report else {},
            "cohort_table": cohort_table(report) if report else [],
            "runs": runs,
            "newest_unfinished": newest,
            "values": {**DEFAULT_FORM, **(values or {})},
            "errors": errors or {},
            "notice": notice,
            "model_options": MODEL_OPTIONS,
        },
        status_code=status,
    )


def _options(form: FormData) -> dict[str, Any]:
    """The form's options for service.analyze; percentages become shares, blanks become defaults."""
    errors: list[dict[str, str]] = []
    out: dict[str, Any] = {}

    def number(name: str, kind, *, message: str):
        raw = text(form, name)
        if not raw:
            return None
        try:
            return kind(raw)
        except ValueError:
            errors.append({"field": name, "message": message})
            return None

    raw_as_of = text(form, "as_of")
    if raw_as_of:
        try:
            out["as_of"] = date.fromisoformat(raw_as_of)
        except ValueError:
            errors.append({"field": "as_of", "message": "enter a date as YYYY-MM-DD, or leave it blank for today"})
    out["model"] = text(form, "model") or "auto"
    horizon = number("horizon_days", int, message="enter a whole number of days")
    out["horizon_days"] = 365 if horizon is None else horizon
    rate = number("discount_rate", float, message="enter a percentage, e.g. 10")
    out["discount_rate"] = 0.10 if rate is None else rate / 100
    margin = number("margin", float, message="enter a percentage, e.g. 40, or leave it blank")
    # Blank margin: the service derives it from the products' unit costs.
    out["margin"] = None if margin is None else margin / 100
    out["holdout_days"] = number("holdout_days", int, message="enter a whole number of days, or leave it blank")
    if errors:
        raise ValidationFailed(errors)
    return out


# The form asks for percentages where the service takes shares; its messages would say 1.5 for 150%.
PERCENT_MESSAGES = {
    "discount_rate": "enter an annual rate from 0 to 100%",
    "margin": "enter the share of revenue kept as profit, above 0 and at most 100%, or leave it blank",
}


def _errors(exc: PatronError) -> dict[str, str]:
    errors = field_errors(exc)
    if not isinstance(exc, ValidationFailed):
        errors = {k: PERCENT_MESSAGES.get(k, v) for k, v in errors.items()}
    # The service names its fields like the form; anything else is shown above the form.
    return {(k if k in FORM_FIELDS else ""): v for k, v in errors.items()}


def _notice(run) -> str:
    status = label(run.status)
    if run.status == "completed":
        scored = f"{run.buyers:,} buyers of {run.customers:,} customers scored"
        return f"Analysis as of {run.as_of:%d %b %Y} finished: {scored}."
    return f"Analysis as of {run.as_of:%d %b %Y} finished with status {status}. {run.message or ''}".strip()


def chart_data(report: equity.EquityReport) -> dict[str, dict[str, Any]]:
    """The page's charts as plain JSON-able series (money as numbers: display only)."""
    segments = report.segments
    cohorts = report.cohorts
    heat: dict[str, Any] = {"kind": "heatmap", "x": [], "y": [], "z": [], "sizes": []}
    if cohorts.height:
        months = sorted(cohorts["months_since"].unique().to_list())
        wide = cohorts.pivot(on="months_since", index=["cohort_month", "cohort_size"], values="retention").sort(
            "cohort_month"
        )
        heat["x"] = months
        heat["y"] = [m.strftime("%b %Y") for m in wide["cohort_month"].to_list()]
        heat["sizes"] = wide["cohort_size"].to_list()
        heat["z"] = [
            [None if v is None else round(100 * v, 1) for v in row]
            for row in wide.select([str(m) for m in months]).rows()
        ]
    return {
        "segments": {
            "kind": "segments",
            "labels": [s.segment for s in segments],
            "customers": [s.customers for s in segments],
            "clv": [float(s.clv) if s.clv is not None else None for s in segments],
        },
        "cohorts": heat,
        "channels": {
            "kind": "channels",
            "labels": [label(c.channel) for c in report.channels],
            "clv": [float(c.average_clv) if c.average_clv is not None else None for c in report.channels],
            "cac": [float(c.average_cac) if c.average_cac is not None else None for c in report.channels],
            "ratio": [c.clv_cac for c in report.channels],
        },
        "trend": {
            "kind": "trend",
            "x": [m.month.strftime("%b %Y") for m in report.trend.history],
            "y": [round(m.revenue, 2) for m in report.trend.history],
            "role": [_trend_role(report.trend, m.month) for m in report.trend.history],
        },
    }


def _trend_role(trend: equity.SalesTrend, month: date) -> str:
    if any(m.month == month for m in trend.recent):
        return "recent"
    if any(m.month == month for m in trend.earlier):
        return "earlier"
    return "other"


COHORT_MILESTONES = (1, 3, 6, 12)


def cohort_table(report: equity.EquityReport) -> list[dict[str, Any]]:
    """Per acquisition month: size and the share still buying 1, 3, 6 and 12 months later (None = not yet)."""
    cohorts = report.cohorts
    if not cohorts.height:
        return []
    picked = cohorts.filter(cohorts["months_since"].is_in(list(COHORT_MILESTONES)))
    wide = (
        cohorts.select("cohort_month", "cohort_size")
        .unique()
        .join(
            picked.pivot(on="months_since", index="cohort_month", values="retention"),
            on="cohort_month",
            how="left",
        )
        .sort("cohort_month", descending=True)
    )
    return [
        {
            "month": row["cohort_month"],
            "size": row["cohort_size"],
            "retention": [row.get(str(m)) for m in COHORT_MILESTONES],
        }
        for row in wide.to_dicts()
    ]
