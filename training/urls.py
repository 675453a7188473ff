from django.urls import path

from . import views

urlpatterns = [
    path("for-you/", views.recommendations, name="recommendations"),
    path("staff/dashboard/", views.staff_dashboard, name="staff-dashboard"),
]
