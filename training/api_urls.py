from django.urls import path

from . import apis

urlpatterns = [
    path("recommendations/", apis.RecommendationApi.as_view(), name="api-recommendations"),
    path("movies/<id:movie_id>/similar/", apis.SimilarMoviesApi.as_view(), name="api-similar-movies"),
    path("training/runs/", apis.TrainingRunListApi.as_view(), name="api-training-runs"),
    path("training/runs/<id:pk>/", apis.TrainingRunDetailApi.as_view(), name="api-training-run"),
    path("models/", apis.ModelVersionListApi.as_view(), name="api-model-versions"),
    path("models/<id:pk>/", apis.ModelVersionDetailApi.as_view(), name="api-model-version"),
    path("models/<id:pk>/promote/", apis.ModelVersionPromoteApi.as_view(), name="api-model-promote"),
    path("models/<id:pk>/retire/", apis.ModelVersionRetireApi.as_view(), name="api-model-retire"),
    path("models/<id:pk>/off-policy/", apis.ModelVersionOffPolicyApi.as_view(), name="api-model-off-policy"),
    path("models/rollback/", apis.ModelVersionRollbackApi.as_view(), name="api-model-rollback"),
    path("serving/", apis.ServingApi.as_view(), name="api-serving"),
    path("experiments/", apis.OnlineExperimentListApi.as_view(), name="api-online-experiments"),
    path(
        "experiments/<id:pk>/stop/",
        apis.OnlineExperimentStopApi.as_view(),
        name="api-online-experiment-stop",
    ),
]
