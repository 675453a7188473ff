"""Admin for training: retrain now, live run progress, and promote / roll back model versions."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from . import registry
from .exceptions import TrainingError
from .models import ModelEvent, ModelVersion, OnlineExperiment, ServingDecision, TrainingRun
from .online import (
    online_experiment_results,
    online_experiment_start,
    online_experiment_stop,
    reward_hacking_warning,
)
from .ope import describe as describe_off_policy
from .ope import off_policy_estimate
from .readiness import feedback_readiness
from .runs import ENQUEUE_GRACE, STALE_AFTER, training_run_cancel, training_run_start


def _pretty(value) -> str:
    return format_html(
        "<pre class='pretty-json'>{}</pre>",
        json.dumps(value, indent=2, sort_keys=True),
    )


def _metric_value(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return json.dumps(value) if isinstance(value, dict | list) else str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) >= 10 else f"{value:.4f}"


def _metrics_table(metrics: dict) -> str:
    """Metrics as a table: one value column, or one column per model when keyed by model ("base v1")."""
    if not metrics:
        return "—"
    if all(isinstance(value, dict) for value in metrics.values()):
        columns = list(metrics)
        names = list(dict.fromkeys(name for values in metrics.values() for name in values))
        rows = [(name, [metrics[column].get(name, "") for column in columns]) for name in names]
    else:
        columns = ["value"]
        rows = [(name, [value]) for name, value in metrics.items()]
    header = format_html_join("", "<th scope='col'>{}</th>", ((column,) for column in ["metric", *columns]))
    body = format_html_join(
        "",
        "<tr><th scope='row'>{}</th>{}</tr>",
        (
            (
                name,
                format_html_join(
                    "",
                    "<td class='num'>{}</td>",
                    ((_metric_value(value) if value != "" else "",) for value in values),
                ),
            )
            for name, values in rows
        ),
    )
    return format_html(
        "<table class='metrics'><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", header, body
    )


class ReadOnlyRecordAdmin(admin.ModelAdmin):
    """A record the pipeline writes: it opens as a page to read, with no Save or Add buttons.

    Changing a version's status goes through the changelist's actions (promote, roll back), which
    need no change permission on the object.
    """

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)


def _interval(summary: dict | None, spec: str = ".3f") -> str:
    """``mean [low, high] (n)`` of a bootstrap summary; a dash when there is no evidence."""
    if not summary or not summary.get("n") or summary.get("mean") is None:
        return "\u2014"
    low, high = summary.get("low"), summary.get("high")
    bounds = f" [{low:{spec}}, {high:{spec}}]" if low is not None and high is not None else ""
    return f"{summary['mean']:{spec}}{bounds} (n={summary['n']})"


def gate_report_html(gate: dict) -> str:
    """The gate's report as a page: the verdict, the judge's credentials, one row per candidate."""
    if "candidates" not in gate:  # a reward model's check, or a report from before the judges
        return _pretty(gate)
    judge = gate.get("judge") or {}
    accuracy = judge.get("accuracy")
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                entry["name"],
                "passed" if entry.get("passed") else "failed",
                entry.get("judge_name", "independent judge"),
                _interval(entry.get("judge")),
                _interval(entry.get("replay")),
                _interval(entry.get("ndcg_difference"), "+.4f"),
                "\u2014" if entry.get("kl") is None else f"{entry['kl']:.2f}",
                entry.get("reason", ""),
            )
            for entry in gate["candidates"]
        ),
    )
    return format_html(
        "<p><strong>{}</strong></p><p>This version ({}): {}: {}</p>"
        "<p>Judge: accuracy {} on {} strict comparisons of the gate users, trained on {} comparisons "
        "of the judge users; {}. Users: {}.</p>"
        "<table><thead><tr><th>candidate</th><th>verdict</th><th>judged by</th><th>judge win rate</th>"
        "<th>annotator replay</th><th>held-out NDCG@10 difference</th><th>KL (nats)</th>"
        "<th>why</th></tr></thead><tbody>{}</tbody></table>"
        "<details><summary>raw report</summary>{}</details>",
        gate.get("decision", ""),
        gate.get("candidate", ""),
        "chosen" if gate.get("chosen") else ("passed" if gate.get("passed") else "held back"),
        gate.get("reason", ""),
        "n/a" if accuracy is None else f"{accuracy:.3f}",
        judge.get("n_strict", 0),
        judge.get("train_comparisons", 0),
        "trusted" if judge.get("trusted") else "not trusted",
        ", ".join(f"{k} {v}" for k, v in (gate.get("users") or {}).items()),
        rows,
        _pretty(gate),
    )


class ModelVersionInline(admin.TabularInline):
    model = ModelVersion
    fields = ["algorithm", "version", "status", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def online_results_line(r: dict, experiment: OnlineExperiment | None = None) -> str:
    """An online comparison's results in one line, with the reward-hacking warning when it applies."""
    if not r["users"]:
        return "no users yet"
    line = (
        f"{r['wins']} wins, {r['ties']} ties, {r['losses']} losses over {r['users']} users; "
        f"win share {r['share']:.3f} [{r['low']:.3f}, {r['high']:.3f}], sign test p = {r['p_value']:.3g}"
    )
    warning = reward_hacking_warning(experiment, r) if experiment is not None else ""
    return f"{line}. {warning}" if warning else line


def _short_time(moment) -> str:
    """A list column's time, short enough that the run and version lists fit 1400 px with the sidebar."""
    if moment is None:
        return "-"
    local = timezone.localtime(moment)
    return local.strftime("%d %b %H:%M" if local.year == timezone.localtime().year else "%d %b %Y %H:%M")


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyRecordAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        "health",
        "progress_bar",
        "step",
        "trigger",
        "by",
        "created",
        "duration",
    ]
    list_filter = ["status", "kind", "trigger"]
    search_fields = ["=id", "step", "error"]
    readonly_fields = [
        "kind",
        "status",
        "health",
        "trigger",
        "created_by",
        "seed",
        "overrides",
        "live_progress",
        "error",
        "metrics_pretty",
        "plots",
        "log_text",
        "celery_task_id",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
    ]
    exclude = ["step", "progress", "log", "metrics", "history", "config"]
    inlines = [ModelVersionInline]
    actions = ["cancel"]
    change_list_template = "admin/training/trainingrun/change_list.html"

    class Media:
        css = {"all": ["css/admin-training.css"]}

    @admin.display(description="created", ordering="created_at")
    def created(self, run: TrainingRun) -> str:
        return _short_time(run.created_at)

    @admin.display(description="by", ordering="created_by__username")
    def by(self, run: TrainingRun) -> str:
        return run.created_by.get_username() if run.created_by else "-"

    @admin.display(description="health")
    def health(self, run: TrainingRun) -> str:
        """Says when an unfinished run looks stuck, so staff know it may be cancelled."""
        now = timezone.now()
        if run.status == TrainingRun.Status.QUEUED:
            if not run.celery_task_id and run.trigger != TrainingRun.Trigger.COMMAND:
                if run.created_at < now - ENQUEUE_GRACE:
                    return "stuck: never handed to a worker"
                return "being queued"
            return f"waiting for a worker since {run.created_at:%H:%M:%S}"
        if run.status == TrainingRun.Status.RUNNING:
            if run.heartbeat_at is None or run.heartbeat_at < now - STALE_AFTER:
                return "stuck: the worker stopped reporting"
            return f"last report {int((now - run.heartbeat_at).total_seconds())} s ago"
        return ""

    @admin.action(description="Cancel the selected queued or stuck runs")
    def cancel(self, request: HttpRequest, queryset) -> None:
        cancelled, live = [], []
        for run in queryset.filter(status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]):
            (cancelled if training_run_cancel(run=run, actor=request.user) else live).append(run.pk)
        if cancelled:
            self.message_user(
                request,
                f"Cancelled runs {', '.join(map(str, cancelled))}; nothing was activated.",
                messages.SUCCESS,
            )
        if live:
            self.message_user(
                request,
                f"Runs {', '.join(map(str, live))} are running and still reporting, so they were left alone.",
                messages.WARNING,
            )
        if not cancelled and not live:
            self.message_user(request, "None of the selected runs is queued or running.", messages.INFO)

    def get_urls(self):
        return [
            path(
                "retrain/", self.admin_site.admin_view(self.retrain_now), name="training_trainingrun_retrain"
            ),
            *super().get_urls(),
        ]

    def retrain_now(self, request: HttpRequest):
        changelist = HttpResponseRedirect(reverse("admin:training_trainingrun_changelist"))
        if request.method != "POST":
            return changelist
        kind = request.POST.get("kind", TrainingRun.Kind.ALL)
        try:
            config = json.loads(request.POST.get("config") or "{}")
            if not isinstance(config, dict):
                raise ValueError('The settings must be a JSON object, e.g. {"ppo": {"iterations": 60}}.')
            run = training_run_start(
                kind=kind, trigger=TrainingRun.Trigger.ADMIN, user=request.user, config=config
            )
        except json.JSONDecodeError as error:
            self.message_user(request, f"The settings are not valid JSON: {error}.", messages.ERROR)
            return changelist
        except (ValueError, TrainingError) as error:
            self.message_user(request, str(error), messages.ERROR)
            return changelist
        self.message_user(request, f"Training run {run.pk} queued.", messages.SUCCESS)
        if run.kind != TrainingRun.Kind.BASE and (readiness := feedback_readiness()).warning:
            self.message_user(request, readiness.warning, messages.WARNING)
        return HttpResponseRedirect(reverse("admin:training_trainingrun_change", args=[run.pk]))

    def changelist_view(self, request, extra_context=None):
        """The retrain form says, before anyone clicks, how much feedback an RLHF run would have."""
        return super().changelist_view(request, {**(extra_context or {}), "readiness": feedback_readiness()})

    @admin.display(description="progress")
    def progress_bar(self, run: TrainingRun) -> str:
        return format_html(
            "<progress max='100' value='{}'></progress> {}%", int(run.progress), int(run.progress)
        )

    @admin.display(description="duration")
    def duration(self, run: TrainingRun) -> str:
        seconds = run.duration_seconds
        return f"{seconds:.0f} s" if seconds is not None else ""

    @admin.display(description="progress")
    def live_progress(self, run: TrainingRun) -> str:
        if run.is_finished:  # nothing to follow: the page already shows the final log and metrics
            return format_html(
                "<progress max='100' value='{}'></progress> {}% {}",
                int(run.progress),
                int(run.progress),
                run.get_status_display(),
            )
        url = reverse("training-run-progress", args=[run.pk]) + "?watching=1"
        return format_html(
            "<div hx-get='{}' hx-trigger='load' hx-swap='outerHTML'><progress max='100' value='{}'></progress> {}% {}</div>",
            url,
            int(run.progress),
            int(run.progress),
            run.step,
        )

    @admin.display(description="metrics")
    def metrics_pretty(self, run: TrainingRun) -> str:
        return _metrics_table(run.metrics)

    @admin.display(description="settings changed")
    def overrides(self, run: TrainingRun) -> str:
        return _pretty(run.config) if run.config else "none (the defaults)"

    @admin.display(description="plots")
    def plots(self, run: TrainingRun) -> str:
        if not run.history:
            return "—"
        return format_html(
            "<img src='{}' class='training-plots' alt='training curves'>",
            reverse("training-run-plot", args=[run.pk]),
        )

    @admin.display(description="log")
    def log_text(self, run: TrainingRun) -> str:
        return format_html("<pre class='run-log'>{}</pre>", run.log)


class ModelEventInline(admin.TabularInline):
    model = ModelEvent
    fields = ["at", "action", "actor", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyRecordAdmin):
    list_display = [
        "label",
        "kind",
        "status",
        "headline",
        "gate_verdict",
        "users_get_it",
        "created",
        "activated",
        "run",
    ]
    list_filter = ["algorithm", "status", "kind"]
    search_fields = ["algorithm", "=version", "artifact"]
    readonly_fields = [
        "kind",
        "algorithm",
        "version",
        "status",
        "artifact",
        "seed",
        "run",
        "created_at",
        "activated_at",
        "metrics_pretty",
        "config_pretty",
        "snapshot_pretty",
        "gate_pretty",
        "people_pretty",
        "lineage",
    ]
    exclude = ["metrics", "config", "data_snapshot", "gate"]
    inlines = [ModelEventInline]
    actions = ["promote", "roll_back", "retire", "compare_online", "estimate_off_policy"]

    class Media:
        css = {"all": ["css/admin-training.css"]}

    list_select_related = ["run"]

    @admin.display(description="gate")
    def gate_verdict(self, version: ModelVersion) -> str:
        if not version.gate:
            return ""
        return ("passed: " if version.gate.get("passed") else "held back: ") + str(
            version.gate.get("reason", "")
        )

    @admin.display(description="metrics")
    def metrics_pretty(self, version: ModelVersion) -> str:
        return _metrics_table(version.metrics)

    @admin.display(description="config")
    def config_pretty(self, version: ModelVersion) -> str:
        return _pretty(version.config)

    @admin.display(description="data snapshot")
    def snapshot_pretty(self, version: ModelVersion) -> str:
        return _pretty(version.data_snapshot)

    @admin.display(description="lineage")
    def lineage(self, version: ModelVersion) -> str:
        return format_html(
            '<a href="{}">Its run, data, the versions it was built on and the feedback it learned from</a>',
            reverse("version-lineage", args=[version.pk]),
        )

    @admin.display(description="promotion gate")
    def gate_pretty(self, version: ModelVersion) -> str:
        return gate_report_html(version.gate)

    @admin.display(description="what people did")
    def people_pretty(self, version: ModelVersion) -> str:
        """The judges that share nothing with any reward model: online comparisons with real users
        (interleaving) and, on the promote page and as an action, the off-policy estimate."""
        if version.algorithm not in registry.SERVABLE:
            return "—"
        rows = [
            (experiment.control.display_name, experiment.status, online_results_line(results, experiment))
            for experiment in version.online_experiments.select_related("control")[:5]
            for results in [online_experiment_results(experiment)]
        ]
        if not rows:
            return "No online comparison yet (the action “Compare online with what users get”); the off-policy estimate is an action too."
        return format_html(
            "<table><thead><tr><th>against</th><th>status</th><th>what users did</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )

    def changelist_view(self, request, extra_context=None):
        self._served = registry.served_decision()
        return super().changelist_view(request, extra_context)

    @admin.display(description="created", ordering="created_at")
    def created(self, version: ModelVersion) -> str:
        return _short_time(version.created_at)

    @admin.display(description="activated", ordering="activated_at")
    def activated(self, version: ModelVersion) -> str:
        return _short_time(version.activated_at)

    @admin.display(description="users get it", boolean=True)
    def users_get_it(self, version: ModelVersion) -> bool | None:
        if version.algorithm not in registry.SERVABLE:
            return None
        served = getattr(self, "_served", None)
        return served is not None and served.version_id == version.pk

    @admin.action(description="Promote the selected version (users get it from now on)")
    def promote(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to promote.", messages.ERROR)
            return None
        version = queryset.get()
        held_back = registry.held_back_by_gate(version)
        note = request.POST.get("note", "").strip()
        error = ""
        if request.POST.get("confirm") == "yes":
            try:
                registry.model_version_promote(
                    version=version,
                    actor=request.user,
                    note=note or ("" if held_back else "promoted in the admin"),
                    override_gate=request.POST.get("override_gate") == "on",
                )
            except TrainingError as failure:
                error = str(failure)
            else:
                if version.algorithm in registry.SERVABLE:
                    message = f"{version.display_name} is now what users get."
                else:
                    message = (
                        f"{version.display_name} is now the active {version.get_kind_display().lower()}."
                    )
                self.message_user(request, message, messages.SUCCESS)
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Promote {version.display_name}?",
            "opts": self.model._meta,
            "version": version,
            "held_back": held_back,
            "served": registry.served_decision(),
            "servable": version.algorithm in registry.SERVABLE,
            "note": note,
            "error": error,
            "online": [
                (experiment, online_experiment_results(experiment))
                for experiment in version.online_experiments.select_related("control")[:3]
            ],
            "off_policy": describe_off_policy(off_policy_estimate(version=version))
            if version.algorithm in registry.SERVABLE
            else "",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/training/modelversion/promote_confirm.html", context)

    @admin.action(
        description="Roll back what users get to the decision before (the reward model: its previous version)"
    )
    def roll_back(self, request, queryset) -> None:
        algorithms = set(queryset.values_list("algorithm", flat=True))
        try:
            if algorithms and not algorithms & set(registry.SERVABLE):
                for algorithm in sorted(algorithms):
                    version = registry.model_version_rollback(
                        algorithm=algorithm, actor=request.user, note="rolled back in the admin"
                    )
                    self.message_user(request, f"Rolled back to {version.display_name}.", messages.SUCCESS)
                return
            version = registry.serving_rollback(actor=request.user, note="rolled back in the admin")
        except TrainingError as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            self.message_user(request, f"Rolled back: users get {version.display_name}.", messages.SUCCESS)

    @admin.action(description="Estimate off-policy on the lists users were shown (explored lists)")
    def estimate_off_policy(self, request, queryset) -> None:
        for version in queryset:
            if version.algorithm not in registry.SERVABLE:
                self.message_user(request, f"{version.display_name} makes no lists.", messages.WARNING)
                continue
            result = off_policy_estimate(version=version)
            self.message_user(
                request, f"{version.display_name}: {describe_off_policy(result)}", messages.INFO
            )

    @admin.action(description="Retire the selected versions (take them out of service)")
    def retire(self, request, queryset) -> None:
        for version in queryset:
            try:
                registry.model_version_retire(
                    version=version, actor=request.user, note="retired in the admin"
                )
            except TrainingError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, f"{version.display_name} retired.", messages.SUCCESS)
        served = registry.served_decision()
        if served is not None:
            self.message_user(request, f"Users get {served.version.display_name}.", messages.INFO)

    @admin.action(description="Compare online with what users get (team-draft interleaving on For you)")
    def compare_online(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to compare.", messages.ERROR)
            return
        version = queryset.get()
        try:
            experiment = online_experiment_start(
                candidate=version, actor=request.user, note="started in the admin"
            )
        except TrainingError as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            self.message_user(
                request,
                f"Comparing {version.display_name} with {experiment.control.display_name} on "
                f"{experiment.share:.0%} of users.",
                messages.SUCCESS,
            )


@admin.register(OnlineExperiment)
class OnlineExperimentAdmin(admin.ModelAdmin):
    """Online comparisons: started from a model version's actions, stopped here; results as they come."""

    list_display = ["__str__", "share", "status", "results_line", "started_by", "started_at", "stopped_at"]
    list_filter = ["status"]
    fields = [
        "control",
        "candidate",
        "share",
        "status",
        "note",
        "started_by",
        "started_at",
        "stopped_at",
        "results",
    ]
    readonly_fields = fields
    actions = ["stop"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)

    @admin.display(description="results (candidate vs control)")
    def results_line(self, experiment: OnlineExperiment) -> str:
        return online_results_line(online_experiment_results(experiment), experiment)

    @admin.display(description="results")
    def results(self, experiment: OnlineExperiment) -> str:
        return self.results_line(experiment)

    @admin.action(description="Stop the selected comparisons (their results stay)")
    def stop(self, request, queryset) -> None:
        for experiment in queryset.filter(status=OnlineExperiment.Status.RUNNING):
            online_experiment_stop(experiment=experiment, actor=request.user)
            self.message_user(request, f"Stopped: {experiment}.", messages.SUCCESS)


class AuditTrailAdmin(admin.ModelAdmin):
    """A record of who decided what: listed and searched, never added, changed or deleted here."""

    search_fields = ["note", "actor__username"]
    list_select_related = ["version", "actor"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ServingDecision)
class ServingDecisionAdmin(AuditTrailAdmin):
    """Every decision about what end users get: the latest one whose version is active is in force."""

    list_display = ["at", "version", "action", "actor", "overrode_gate", "note"]
    list_filter = ["action", "overrode_gate", "version__algorithm"]


@admin.register(ModelEvent)
class ModelEventAdmin(AuditTrailAdmin):
    list_display = ["at", "version_label", "action", "actor", "note"]
    list_filter = ["action", "version__algorithm"]

    @admin.display(description="version", ordering="version")
    def version_label(self, event: ModelEvent) -> str:
        # Not str(version): it ends with the version's status today, which a past event did not have.
        return event.version.display_name
