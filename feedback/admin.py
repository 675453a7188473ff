from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from .apis import export_response
from .models import AnnotatorStatus, Comparison, ComparisonTask, ItemFeedback, ListFeedback, TaskAssignment
from .selectors import export_records


def signals_table(signals: list[dict]) -> str:
    """Parsed text signals as a small table: aspect, value, polarity, the words they came from."""
    if not signals:
        return "—"
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                s.get("aspect", ""),
                s.get("value", ""),
                f"{float(s.get('polarity') or 0.0):+.2f}",
                s.get("span", ""),
            )
            for s in signals
        ),
    )
    return format_html(
        "<table><thead><tr><th>aspect</th><th>value</th><th>polarity</th><th>words</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        rows,
    )


class JudgmentInline(admin.TabularInline):
    model = Comparison
    extra = 0
    fields = ["annotator", "simulator", "choice", "confidence", "reason", "decision_ms", "created_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(ComparisonTask)
class ComparisonTaskAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "context_kind",
        "context_rater",
        "is_gold",
        "gold_worse",
        "required_judgments",
        "selection",
        "simulated",
        "created_at",
    ]
    list_filter = ["context_kind", "is_gold", "selection", "simulated", "required_judgments", "created_at"]
    search_fields = ["=id", "=context_rater__movielens_id", "context_rater__user__username"]
    raw_id_fields = ["context_rater"]
    list_select_related = ["context_rater"]
    readonly_fields = ["created_at"]
    inlines = [JudgmentInline]
    show_full_result_count = False


@admin.register(TaskAssignment)
class TaskAssignmentAdmin(admin.ModelAdmin):
    list_display = ["task", "annotator", "assigned_at", "skipped"]
    list_filter = ["skipped", "assigned_at"]
    search_fields = ["annotator__username", "=task__id"]
    raw_id_fields = ["task", "annotator"]
    list_select_related = ["task", "annotator"]
    show_full_result_count = False


@admin.action(description="Export selected as JSONL")
def export_jsonl(modeladmin, request, queryset):
    return export_response(export_records(ids=queryset.values_list("pk", flat=True)), fmt="jsonl")


class SimulatedFilter(admin.SimpleListFilter):
    title = "judged by"
    parameter_name = "by"

    def lookups(self, request, model_admin):
        return [("human", "people"), ("simulated", "simulated annotators")]

    def queryset(self, request, queryset):
        if self.value() == "human":
            return queryset.filter(simulator="")
        if self.value() == "simulated":
            return queryset.exclude(simulator="")
        return queryset


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "task",
        "annotator",
        "simulator",
        "choice",
        "confidence",
        "decision_ms",
        "sentiment",
        "created_at",
    ]
    list_filter = [
        SimulatedFilter,
        "choice",
        "confidence",
        "task__is_gold",
        "task__context_kind",
        "created_at",
    ]
    search_fields = ["reason", "annotator__username", "simulator", "=task__id"]
    raw_id_fields = ["task", "annotator"]
    list_select_related = ["task", "annotator"]
    readonly_fields = ["signals_readable", "created_at"]
    exclude = ["signals"]
    actions = [export_jsonl]
    show_full_result_count = False

    @admin.display(description="Parsed signals")
    def signals_readable(self, obj: Comparison) -> str:
        return signals_table(obj.signals)


@admin.register(AnnotatorStatus)
class AnnotatorStatusAdmin(admin.ModelAdmin):
    list_display = ["annotator", "excluded", "changed_by", "changed_at"]
    list_filter = ["excluded"]
    search_fields = ["annotator__username", "note"]
    raw_id_fields = ["annotator", "changed_by"]
    list_select_related = ["annotator", "changed_by"]


@admin.register(ItemFeedback)
class ItemFeedbackAdmin(admin.ModelAdmin):
    list_display = ["user", "movie", "kind", "policy", "version", "created_at"]
    list_filter = ["kind", "policy", "created_at"]
    search_fields = ["user__username", "movie__title", "=movie__id"]
    raw_id_fields = ["user", "movie"]
    list_select_related = ["user", "movie"]
    show_full_result_count = False


@admin.register(ListFeedback)
class ListFeedbackAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "short_text", "sentiment", "policy", "version", "created_at"]
    list_filter = ["policy", "created_at"]
    search_fields = ["text", "user__username"]
    raw_id_fields = ["user"]
    list_select_related = ["user"]
    readonly_fields = ["signals_readable", "created_at"]
    exclude = ["signals"]
    show_full_result_count = False

    @admin.display(description="Text")
    def short_text(self, obj: ListFeedback) -> str:
        return obj.text if len(obj.text) <= 80 else obj.text[:77] + "..."

    @admin.display(description="Parsed signals")
    def signals_readable(self, obj: ListFeedback) -> str:
        return signals_table(obj.signals)
