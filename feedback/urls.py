from django.urls import path

from . import views

urlpatterns = [
    path("compare/", views.compare, name="compare"),
    path("compare/<int:task_id>/", views.compare_submit, name="compare-submit"),
    path("compare/<int:task_id>/skip/", views.compare_skip, name="compare-skip"),
    path("compare/undo/<int:comparison_id>/", views.compare_undo, name="compare-undo"),
    path("feedback/items/<int:movie_id>/", views.item_feedback, name="item-feedback"),
    path("feedback/list/", views.list_feedback, name="list-feedback"),
    path("my/feedback/", views.my_feedback, name="my-feedback"),
    path("staff/annotators/", views.annotators, name="staff-annotators"),
    path(
        "staff/annotators/<int:user_id>/exclusion/",
        views.annotator_exclusion,
        name="staff-annotator-exclusion",
    ),
    path("staff/leaderboard/", views.leaderboard, name="staff-leaderboard"),
]
