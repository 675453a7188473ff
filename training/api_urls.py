from django.urls import path

from . import apis

urlpatterns = [
    path("recommendations/", apis.RecommendationApi.as_view(), name="api-recommendations"),
]
