from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from arena import api as arena_api
from arena import views as arena_views
from ratings import api as ratings_api
from ratings import views as ratings_views

urlpatterns = [
    path("", RedirectView.as_view(url="/arena/", permanent=False)),
    path("arena/", arena_views.arena_page, name="arena"),
    path("leaderboard/", ratings_views.leaderboard_page, name="leaderboard"),
    path("api/v1/battles/", arena_api.BattleCreateApi.as_view(), name="api-battles"),
    path("api/v1/battles/<uuid:battle_id>/vote/", arena_api.BattleVoteApi.as_view(), name="api-battle-vote"),
    path("api/v1/leaderboard/", ratings_api.LeaderboardApi.as_view(), name="api-leaderboard"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]
