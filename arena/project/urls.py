from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from arena import api as arena_api
from arena import site
from arena import streaming as arena_streaming
from arena import views as arena_views
from arena.project import health as arena_health
from arena.project import metrics as arena_metrics
from ratings import api as ratings_api
from ratings import judge_api as ratings_judge_api
from ratings import personal_api
from ratings import views as ratings_views
from votes import api as votes_api

urlpatterns = [
    path("", RedirectView.as_view(url="/arena/", permanent=False)),
    path("arena/", arena_views.arena_page, name="arena"),
    path("favicon.ico", site.favicon, name="favicon"),
    path("api/v1/csrf/", site.CsrfApi.as_view(), name="api-csrf"),
    path("leaderboard/", ratings_views.leaderboard_page, name="leaderboard"),
    path("leaderboard/models/<path:name>/", ratings_views.model_page, name="leaderboard-model"),
    path("leaderboard/me/", personal_api.personal_page, name="leaderboard-me"),
    path("api/v1/battles/", arena_api.BattleCreateApi.as_view(), name="api-battles"),
    path("api/v1/battles/<str:battle_id>/vote/", votes_api.BattleVoteApi.as_view(), name="api-battle-vote"),
    path("api/v1/battles/<str:battle_id>/stream/", arena_streaming.battle_stream, name="api-battle-stream"),
    path("api/v1/battles/<str:battle_id>/turns/", arena_api.BattleTurnApi.as_view(), name="api-battle-turns"),
    path("api/v1/battles/<str:battle_id>/skip/", arena_api.BattleSkipApi.as_view(), name="api-battle-skip"),
    path("api/v1/leaderboard/", ratings_api.LeaderboardApi.as_view(), name="api-leaderboard"),
    path("api/v1/judges/", ratings_judge_api.JudgesApi.as_view(), name="api-judges"),
    path("api/v1/votes/export/", votes_api.VoteExportApi.as_view(), name="api-votes-export"),
    path("api/v1/leaderboard/history/", ratings_api.HistoryApi.as_view(), name="api-leaderboard-history"),
    path("api/v1/models/", ratings_api.ModelListApi.as_view(), name="api-models"),
    path("api/v1/models/<path:name>/", ratings_api.ModelDetailApi.as_view(), name="api-model"),
    path("api/v1/matrix/", ratings_api.MatrixApi.as_view(), name="api-matrix"),
    path("api/v1/snapshots/", ratings_api.SnapshotListApi.as_view(), name="api-snapshots"),
    path("api/v1/snapshots/<int:snapshot_id>/", ratings_api.SnapshotDetailApi.as_view(), name="api-snapshot"),
    path("api/v1/categories/", ratings_api.CategoriesApi.as_view(), name="api-categories"),
    path("api/v1/me/leaderboard/", personal_api.PersonalLeaderboardApi.as_view(), name="api-me-leaderboard"),
    path("api/v1/me/votes/", personal_api.PersonalVotesApi.as_view(), name="api-me-votes"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/dashboard/", include("ratings.admin_urls")),
    path("admin/", admin.site.urls),
    # Operators' probe and Prometheus scrape (deploy/README.md); not part of /api/.
    path("healthz", arena_health.healthz_view, name="healthz"),
    path("metrics", arena_metrics.metrics_view, name="metrics"),
]

# Errors outside DRF views (no route, an unhandled exception) in the API's shape too.
handler400 = "arena.api_errors.bad_request"
handler404 = "arena.api_errors.not_found"
handler500 = "arena.api_errors.server_error"
