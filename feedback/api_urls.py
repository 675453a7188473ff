from django.urls import path

from . import apis

urlpatterns = [
    path("comparisons/", apis.ComparisonCreateApi.as_view(), name="api-comparison-create"),
    path("comparisons/next/", apis.NextComparisonApi.as_view(), name="api-comparison-next"),
    path("comparisons/export/", apis.ComparisonExportApi.as_view(), name="api-comparison-export"),
    path("feedback/items/", apis.ItemFeedbackApi.as_view(), name="api-item-feedback"),
    path("feedback/lists/", apis.ListFeedbackApi.as_view(), name="api-list-feedback"),
]
