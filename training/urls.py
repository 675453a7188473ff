from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("for-you/", views.recommendations, name="recommendations"),
    path("movies/<int:movie_id>/similar/", views.movie_similar, name="movie-similar"),
    path("staff/dashboard/", views.staff_dashboard, name="staff-dashboard"),
    path("staff/versions/<int:version_id>/lineage/", views.version_lineage, name="version-lineage"),
    path("staff/runs/<int:run_id>/progress/", views.training_run_progress, name="training-run-progress"),
    path("staff/runs/<int:run_id>/plot.png", views.training_run_plot, name="training-run-plot"),
    path("staff/plots/ratings.png", views.plot_ratings, name="plot-ratings"),
    path("staff/plots/versions.png", views.plot_versions, name="plot-versions"),
    path("staff/plots/genre-mix.png", views.plot_genre_mix, name="plot-genre-mix"),
]
