"""Rollouts: model versions, live rollouts with their percentages, a rollout's metrics with
intervals, its decision timeline and the controls; the tenant's rollout policy and pins.

What a tenant sees and may do is the rollout services' (`rollout.services`: lifecycle, policy,
window, registry) with the API's `Authority`: platform rollouts are read-only here exactly as on
`/api/v1/rollouts/` (`platform_operator_required`), and another tenant's rollout is a 404.
"""

from __future__ import annotations

import json
import re

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path, reverse

from frontend import charts
from frontend.console import (
    ConsoleForm,
    console_view,
    paginate,
    render_page,
)
from rollout.models import STOCK_FAMILY, ModelVersion, Rollout
from rollout.services import lifecycle, policy, registry, window
from rollout.services.authority import Authority
from rollout.services.resolution import UnknownVersion
from tenancy.roles import Scope
from voices.models import Voice

RECENT_ENDED = 10


def authority_of(console) -> Authority:
    # The same caller the tenant API builds (`RolloutViewSet.authority`).
    return Authority.for_access(console.access, console.audit_context)


def family_labels(console, families) -> dict[str, str]:
    """A readable name per family: "Stock voice", or the custom voice's name (one query)."""
    ids = {f.removeprefix("voice:") for f in families if f.startswith("voice:")}
    names = {
        str(pk): name
        for pk, name in Voice.objects.visible_to(console.tenant)
        .filter(pk__in=ids)
        .values_list("pk", "name")
    }
    return {
        family: "Stock voice"
        if family == STOCK_FAMILY
        else names.get(family.removeprefix("voice:"), family)
        for family in families
    }


VALIDATION_SUMMARY = (
    ("wer", "WER", "{:.3f}"),
    ("mos", "MOS", "{:.2f}"),
    ("rtf", "RTF", "{:.2f}"),
    ("speaker_similarity", "similarity", "{:.2f}"),
)


def validation_summary(version: ModelVersion) -> str:
    measured = (version.validation or {}).get("metrics") or {}
    parts = [
        f"{label} {fmt.format(measured[key])}"
        for key, label, fmt in VALIDATION_SUMMARY
        if isinstance(measured.get(key), int | float)
    ]
    return " · ".join(parts)


def describe_rollout(rollout: Rollout, labels: dict[str, str]) -> dict:
    steps = [float(s) for s in rollout.steps]
    return {
        "rollout": rollout,
        "family_label": labels.get(rollout.family, rollout.family),
        "step_number": rollout.step_index + 1,
        "step_count": len(steps),
        "steps": [
            {"percent": s, "done": i < rollout.step_index, "current": i == rollout.step_index}
            for i, s in enumerate(steps)
        ],
    }


# Forms -----------------------------------------------------------------------------------------


class RolloutForm(ConsoleForm):
    pass


class ReasonForm(RolloutForm):
    reason = forms.CharField(
        max_length=500,
        required=False,
        label="Reason",
        help_text="Recorded with the decision and in the audit log.",
    )


class PromoteForm(ReasonForm):
    complete = forms.BooleanField(
        required=False,
        label="Complete now (make the candidate stable for everyone)",
    )


class RollbackForm(ReasonForm):
    reason = forms.CharField(
        max_length=500,
        label="Reason",
        help_text="Required: the candidate is marked bad and cannot simply be rolled out again.",
    )


def _tenant_list(value: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", value or "") if part]


class TargetingForm(RolloutForm):
    include_all_tenants = forms.BooleanField(required=False, label="Include every tenant")
    included_tenants = forms.CharField(
        required=False,
        label="Included tenant ids",
        help_text="Used when not every tenant is included; comma- or space-separated.",
    )
    excluded_tenants = forms.CharField(
        required=False,
        label="Excluded tenant ids",
        help_text="These always hear the stable version.",
    )
    reason = forms.CharField(max_length=500, required=False, label="Reason")

    def clean_included_tenants(self):
        return _tenant_list(self.cleaned_data["included_tenants"])

    def clean_excluded_tenants(self):
        return _tenant_list(self.cleaned_data["excluded_tenants"])


class PolicyForm(RolloutForm):
    early_access = forms.BooleanField(
        required=False,
        label="Early access",
        help_text="Hear the candidate of every platform rollout now, as if it were at 100 %.",
    )
    allow_explicit_versions = forms.BooleanField(
        required=False,
        label="Allow explicit versions",
        help_text="Let API keys ask for a model version by id (model_version, or OpenAI model).",
    )


class PinForm(RolloutForm):
    error_fields = {"unknown_model_version": "version", "family_mismatch": "version"}

    family = forms.CharField(required=False, label="Family", widget=forms.Select)
    version = forms.CharField(max_length=200, label="Version", widget=forms.Select)

    def __init__(self, *args, versions=(), labels=None, **kwargs):
        super().__init__(*args, **kwargs)
        labels = labels or {}
        families = sorted({v.family for v in versions}, key=lambda f: (f != STOCK_FAMILY, f))
        self.fields["family"].widget.choices = [("", "The version's family")] + [
            (f, labels.get(f, f)) for f in families
        ]
        grouped = {}
        for v in versions:
            grouped.setdefault(labels.get(v.family, v.family), []).append(
                (v.pk, f"{v.semver} · {v.version}")
            )
        self.fields["version"].widget.choices = [("", "Choose a validated version")] + list(
            grouped.items()
        )


# Pages ----------------------------------------------------------------------------------------


def _overview(request, console, *, pin_form=None, policy_form=None, status=200):
    authority = authority_of(console)
    rollouts = lifecycle.list_rollouts(authority)
    live = list(rollouts.filter(state__in=Rollout.LIVE))
    ended = list(rollouts.exclude(state__in=Rollout.LIVE)[:RECENT_ENDED])
    versions = paginate(request, registry.list_versions(authority))
    pins = list(policy.list_pins(authority, console.tenant))
    choices = list(registry.list_versions(authority).filter(status=ModelVersion.Status.VALIDATED))
    families = (
        {r.family for r in live + ended}
        | {v.family for v in versions.items}
        | {p.family for p in pins}
        | {v.family for v in choices}
    )
    labels = family_labels(console, families)
    current = policy.get_policy(authority, console.tenant)
    if policy_form is None:
        policy_form = PolicyForm(
            initial={
                "early_access": current.early_access,
                "allow_explicit_versions": current.allow_explicit_versions,
            }
        )
    if pin_form is None:
        pin_form = PinForm(versions=choices, labels=labels)
    return render_page(
        request,
        console,
        "frontend/rollouts/overview.html",
        section="rollouts",
        status=status,
        live=[describe_rollout(r, labels) for r in live],
        ended=[describe_rollout(r, labels) for r in ended],
        versions=versions,
        version_rows=[
            {
                "version": v,
                "family_label": labels.get(v.family, v.family),
                "summary": validation_summary(v),
            }  # fmt: skip
            for v in versions.items
        ],
        pins=[{"pin": p, "family_label": labels.get(p.family, p.family)} for p in pins],
        policy=current,
        policy_form=policy_form,
        pin_form=pin_form,
        can_manage=console.has(Scope.MODELS_WRITE),
    )


@console_view(Scope.MODELS_READ)
def rollouts_page(request, console):
    return _overview(request, console)


METRIC_ROWS = (
    ("error_rate", "Error rate", "%", 100.0, "lower"),
    ("timeout_rate", "Timeout rate", "%", 100.0, "lower"),
    ("latency_per_char_ms_p50", "Latency p50", "ms/char", 1.0, "lower"),
    ("latency_per_char_ms_p95", "Latency p95", "ms/char", 1.0, "lower"),
    ("rtf_p50", "Real-time factor p50", "", 1.0, "lower"),
    ("wer", "ASR word error rate", "", 1.0, "lower"),
    ("mos", "Predicted MOS", "", 1.0, "higher"),
    ("similarity", "Speaker similarity", "", 1.0, "higher"),
)


def _value(arm: dict, key: str):
    if key in ("wer", "mos", "similarity"):
        return arm["quality"][key]["mean"]
    return arm[key]


def _samples(arm: dict, key: str) -> int:
    if key in ("wer", "mos", "similarity"):
        return arm["quality"][key]["samples"]
    return arm["requests"]


def _short(value) -> str:
    return "no value" if value is None else f"{value:.3g}"


def _scaled(value, scale):
    return None if value is None else round(value * scale, 4)


def metric_rows(metrics: dict) -> tuple[list[dict], list]:
    """One row per metric (value, interval and sample size per arm) and one interval chart per
    metric that has data in some arm."""
    arms = {v["arm"]: v for v in metrics["versions"]}
    candidate, stable = arms[window.CANDIDATE], arms[window.STABLE]
    rows, drawn = [], []
    for key, label, unit, scale, better in METRIC_ROWS:
        cells = []
        for arm in (candidate, stable):
            interval = arm["intervals"][key]
            cells.append(
                {
                    "value": _scaled(_value(arm, key), scale),
                    "low": _scaled(interval[0], scale) if interval else None,
                    "high": _scaled(interval[1], scale) if interval else None,
                    "samples": _samples(arm, key),
                }
            )
        row = {"key": key, "label": label, "unit": unit, "better": better, "arms": cells}
        rows.append(row)
        if any(c["low"] is not None for c in cells):
            title = f"{label}{f' ({unit})' if unit else ''}"
            summary = "; ".join(
                f"{name}: {_short(c['value'])} ({_short(c['low'])} to {_short(c['high'])}, "
                f"n={c['samples']})"
                if c["low"] is not None
                else f"{name}: no data"
                for name, c in zip(("Candidate", "Stable"), cells, strict=True)
            )
            drawn.append(
                charts.intervals(
                    f"metric-{key.replace('_', '-')}",
                    f"{title}: 95 % intervals, candidate beside stable",
                    [label],
                    {
                        "Candidate": [(cells[0]["low"], cells[0]["high"])]
                        if cells[0]["low"] is not None
                        else [None],
                        "Stable": [(cells[1]["low"], cells[1]["high"])]
                        if cells[1]["low"] is not None
                        else [None],
                    },
                    summary=f"{title}, {'lower' if better == 'lower' else 'higher'} is "
                    f"better. {summary}.",
                )
            )
    return rows, drawn


def _detail(request, console, rollout, *, forms_=None, status=200):
    authority = authority_of(console)
    labels = family_labels(console, [rollout.family])
    decisions = paginate(request, lifecycle.list_decisions(authority, rollout))
    metrics = window.rollout_metrics_for(authority, rollout, intervals=True)
    rows, drawn = metric_rows(metrics)
    targeting = lifecycle.visible_targeting(authority, rollout)
    mine = str(console.tenant.pk)
    may_act = not rollout.is_platform and console.has(Scope.MODELS_WRITE)
    bound = forms_ or {}
    action_forms = {
        "pause": bound.get("pause") or ReasonForm(prefix="pause"),
        "resume": bound.get("resume") or ReasonForm(prefix="resume"),
        "promote": bound.get("promote") or PromoteForm(prefix="promote"),
        "rollback": bound.get("rollback") or RollbackForm(prefix="rollback"),
        "targeting": bound.get("targeting")
        or TargetingForm(
            prefix="targeting",
            initial={
                "include_all_tenants": targeting["include_all_tenants"],
                "included_tenants": ", ".join(targeting["included_tenants"]),
                "excluded_tenants": ", ".join(targeting["excluded_tenants"]),
            },
        ),
    }
    return render_page(
        request,
        console,
        "frontend/rollouts/detail.html",
        section="rollouts",
        status=status,
        r=describe_rollout(rollout, labels),
        rollout=rollout,
        metrics=metrics,
        metric_rows=rows,
        metric_charts=drawn,
        decisions=decisions,
        decision_rows=[_decision_row(authority, d) for d in decisions.items],
        targeting=targeting,
        targeted=targeting["include_all_tenants"] or mine in targeting["included_tenants"],
        excluded=mine in targeting["excluded_tenants"],
        tenant_id=mine,
        may_act=may_act,
        forms=action_forms,
        action_errors=[e for form in bound.values() for e in form.non_field_errors()],
    )


def _decision_row(authority, decision) -> dict:
    evidence = lifecycle.visible_evidence(authority, decision.evidence)
    return {
        "decision": decision,
        "evidence": evidence,
        "evidence_json": json.dumps(evidence, indent=2, sort_keys=True, default=str),
    }


@console_view(Scope.MODELS_READ)
def rollout_detail(request, console, rollout_id):
    rollout = lifecycle.get_rollout(authority_of(console), rollout_id)
    return _detail(request, console, rollout)


# Actions ----------------------------------------------------------------------------------------

ACTIONS = {
    "pause": (ReasonForm, "Paused: nobody flips and nobody is added until you resume."),
    "resume": (ReasonForm, "Resumed: the current step starts a fresh window."),
    "promote": (PromoteForm, "Promoted."),
    "rollback": (RollbackForm, "Rolled back: everyone hears the stable version again."),
    "targeting": (TargetingForm, "Targeting changed."),
}


def _act(authority, rollout, action, data):
    if action == "pause":
        return lifecycle.pause(authority, rollout, data["reason"])
    if action == "resume":
        return lifecycle.resume(authority, rollout, data["reason"])
    if action == "promote":
        return lifecycle.promote(authority, rollout, data["reason"], complete=data["complete"])
    if action == "rollback":
        return lifecycle.rollback(authority, rollout, data["reason"])
    return lifecycle.set_targeting(
        authority,
        rollout,
        include_all_tenants=data["include_all_tenants"],
        included_tenants=data["included_tenants"],
        excluded_tenants=data["excluded_tenants"],
        reason=data["reason"],
    )


@console_view(Scope.MODELS_WRITE)
def rollout_action(request, console, rollout_id, action):
    authority = authority_of(console)
    rollout = lifecycle.get_rollout(authority, rollout_id)  # another tenant's: 404
    if action not in ACTIONS:
        raise Http404
    if request.method != "POST":
        return redirect("frontend:rollouts-detail", console.tenant.slug, rollout.pk)
    form_class, done = ACTIONS[action]
    form = form_class(request.POST, prefix=action)
    if not form.is_valid():
        return _detail(request, console, rollout, forms_={action: form}, status=400)
    try:
        _act(authority, rollout, action, form.cleaned_data)
    except (lifecycle.RolloutConflict, lifecycle.InvalidRollout) as exc:
        # A state the rollout is not in, or bad targeting: said on the form. Who may act
        # (platform rollouts, scopes) is not a form error: it becomes the error page.
        form.add_service_error(exc)
        return _detail(request, console, rollout, forms_={action: form}, status=exc.status_code)
    messages.success(request, done)
    return redirect("frontend:rollouts-detail", console.tenant.slug, rollout.pk)


@console_view(Scope.MODELS_WRITE)
def policy_update(request, console):
    if request.method != "POST":
        return redirect("frontend:rollouts", console.tenant.slug)
    form = PolicyForm(request.POST)
    if not form.is_valid():
        return _overview(request, console, policy_form=form, status=400)
    policy.update_policy(authority_of(console), console.tenant, **form.cleaned_data)
    messages.success(request, "Rollout policy saved.")
    return redirect(reverse("frontend:rollouts", args=[console.tenant.slug]) + "#policy")


@console_view(Scope.MODELS_WRITE)
def pin_create(request, console):
    if request.method != "POST":
        return redirect("frontend:rollouts", console.tenant.slug)
    authority = authority_of(console)
    choices = list(registry.list_versions(authority).filter(status=ModelVersion.Status.VALIDATED))
    labels = family_labels(console, {v.family for v in choices})
    form = PinForm(request.POST, versions=choices, labels=labels)
    if form.is_valid():
        try:
            pinned = policy.pin(
                authority,
                console.tenant,
                form.cleaned_data["version"],
                form.cleaned_data["family"] or None,
            )
        except (UnknownVersion, policy.InvalidPin) as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Pinned {pinned.family} to {pinned.version_id}.")
            return redirect(reverse("frontend:rollouts", args=[console.tenant.slug]) + "#pins")
    return _overview(request, console, pin_form=form, status=400)


@console_view(Scope.MODELS_WRITE)
def pin_delete(request, console, pin_id):
    authority = authority_of(console)
    pinned = policy.get_pin(authority, console.tenant, pin_id)
    if request.method == "POST":
        policy.unpin(authority, console.tenant, pinned)
        messages.success(request, f"Unpinned {pinned.family}: rollouts apply again.")
    return redirect(reverse("frontend:rollouts", args=[console.tenant.slug]) + "#pins")


urlpatterns = [
    path("<slug:slug>/rollouts/", rollouts_page, name="rollouts"),
    path("<slug:slug>/rollouts/policy/", policy_update, name="rollouts-policy"),
    path("<slug:slug>/rollouts/pins/", pin_create, name="rollouts-pin"),
    path("<slug:slug>/rollouts/pins/<str:pin_id>/unpin/", pin_delete, name="rollouts-unpin"),
    path("<slug:slug>/rollouts/<str:rollout_id>/", rollout_detail, name="rollouts-detail"),
    path(
        "<slug:slug>/rollouts/<str:rollout_id>/<slug:action>/",
        rollout_action,
        name="rollouts-action",
    ),
]
