"""The dashboard's URLs, mounted at ``/``. Keys are named by their public id, never the key."""

from django.urls import path

from keys import views
from keys.views import reports, teams
from keys.views.leaks import key_replace

app_name = "keys"

urlpatterns = [
    path("", views.key_list, name="list"),
    path("keys/new", views.key_create, name="create"),
    path("keys/bulk", views.key_bulk, name="bulk"),
    path("keys/<str:public_id>/", views.key_detail, name="detail"),
    path("keys/<str:public_id>/edit", views.key_edit, name="edit"),
    path("keys/<str:public_id>/rotate", views.key_rotate, name="rotate"),
    path("keys/<str:public_id>/pause", views.key_pause, name="pause"),
    path("keys/<str:public_id>/resume", views.key_resume, name="resume"),
    path("keys/<str:public_id>/revoke", views.key_revoke, name="revoke"),
    path("keys/<str:public_id>/replace", key_replace, name="replace"),
    path("usage/", reports.usage_page, name="usage"),
    path("usage/export.csv", reports.usage_export, name="usage-export"),
    path("teams/", teams.team_list, name="teams"),
    path("teams/new", teams.team_create, name="team-create"),
    path("teams/<int:team_id>/", teams.team_detail, name="team"),
    path("teams/<int:team_id>/edit", teams.team_edit, name="team-edit"),
    path("teams/<int:team_id>/members", teams.team_member_add, name="team-member-add"),
    path("teams/<int:team_id>/members/<int:user_id>", teams.team_member_change, name="team-member"),
]
