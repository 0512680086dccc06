""" "Recompute now" and worker health, with a real Celery worker process on
the configured broker, and with a broker that is down."""

from __future__ import annotations

import sys

import httpx
import pytest
from celery import Celery

from arena.locks import recompute_lock
from ratings import dashboard
from ratings.models import RecomputeRun, Snapshot
from tests.admin.conftest import staff
from tests.services import ChildProcess, free_port, wait_for, worker_env

pytestmark = [pytest.mark.worker]


def run_state(client, run_id: int) -> dict:
    response = client.get(f"/admin/ratings/recomputerun/{run_id}/status/")
    assert response.status_code == 200
    return response.json()


def test_recompute_now_queues_the_task_and_shows_its_progress_and_result(
    operator_client, operator, arena_votes, start_worker
):
    worker = start_worker()
    form = operator_client.get("/admin/ratings/recomputerun/add/")
    assert form.status_code == 200 and b"Recompute now" in form.content

    response = operator_client.post("/admin/ratings/recomputerun/add/", {"ci": "sandwich", "rounds": 100})

    run = RecomputeRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/ratings/recomputerun/{run.pk}/change/"
    assert (run.requested_by, run.ci, run.task_id != "") == (operator, "sandwich", True)
    page = operator_client.get(response["Location"]).content.decode()
    assert f'data-url="/admin/ratings/recomputerun/{run.pk}/status/"' in page
    done = wait_for(lambda: (s := run_state(operator_client, run.pk))["status"] in ("done", "failed") and s, 30)
    assert done and done["status"] == "done", (done, worker.output()[-3000:])
    snap = Snapshot.objects.get()
    assert done["snapshot"]["id"] == snap.id and done["snapshot"]["new"] is True
    assert done["snapshot"]["vote_count"] == len(arena_votes) and done["seconds"] >= done["snapshot"]["duration"]
    assert done["attempts"] == 1 and done["error"] == ""
    assert f"Task ratings.recompute[{run.task_id}]" in worker.output()

    # Nothing changed since: a second run returns the same snapshot, unless forced.
    operator_client.post("/admin/ratings/recomputerun/add/", {"ci": "sandwich", "rounds": 100})
    again = RecomputeRun.objects.order_by("-id").first()
    state = wait_for(lambda: (s := run_state(operator_client, again.pk))["status"] == "done" and s, 30)
    assert state["snapshot"]["id"] == snap.id and state["snapshot"]["new"] is False
    operator_client.post("/admin/ratings/recomputerun/add/", {"ci": "none", "rounds": 100, "force": "on"})
    forced = RecomputeRun.objects.order_by("-id").first()
    state = wait_for(lambda: (s := run_state(operator_client, forced.pk))["status"] == "done" and s, 30)
    assert state["snapshot"]["new"] is True and Snapshot.objects.get(id=state["snapshot"]["id"]).ci == "none"


def test_a_run_waits_while_another_recompute_holds_the_lock(operator_client, arena_votes, start_worker):
    start_worker()
    with recompute_lock() as got:
        assert got
        operator_client.post("/admin/ratings/recomputerun/add/", {"ci": "sandwich", "rounds": 100})
        run = RecomputeRun.objects.get()
        waiting = wait_for(lambda: (s := run_state(operator_client, run.pk))["error"] and s, 30)
        assert waiting["status"] == "queued" and "another recompute is running" in waiting["error"]
        assert not Snapshot.objects.exists()
    done = wait_for(lambda: (s := run_state(operator_client, run.pk))["status"] == "done" and s, 30)
    assert done and done["attempts"] >= 2 and Snapshot.objects.count() == 1


def test_bad_recompute_input_is_refused(operator_client, db):
    response = operator_client.post("/admin/ratings/recomputerun/add/", {"ci": "magic", "rounds": 5})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"ci", "rounds"}
    assert not RecomputeRun.objects.exists()


def test_worker_health_with_a_worker_running(start_worker):
    worker = start_worker()
    health = wait_for(lambda: (h := dashboard.worker_health())["workers"] and h, 20)
    assert health, (dashboard.worker_health(), worker.output()[-2000:])
    assert health["broker"] == "ok" and health["queued"] == 0 and health["error"] == ""


def test_worker_health_with_the_broker_down_says_unreachable():
    # Not the current app: later tests in this thread publish through celery.current_app.
    dead = Celery("probe", broker=f"redis://127.0.0.1:{free_port()}/0", set_as_current=False)
    dead.conf.broker_transport_options = {"socket_connect_timeout": 1}
    dead.conf.broker_connection_timeout = 1
    health = dashboard.worker_health(dead, timeout=1.0)
    assert health["broker"] == "unreachable" and health["workers"] is None and health["queued"] is None
    assert "Error" in health["error"]


def login(http: httpx.Client, username: str) -> None:
    http.get("/admin/login/")
    response = http.post(
        "/admin/login/?next=/admin/",
        data={"username": username, "password": "pw-" + username, "csrfmiddlewaretoken": http.cookies["csrftoken"]},
    )
    assert response.status_code == 302 and response.headers["location"] == "/admin/", response.text[:500]


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_dashboard_says_unreachable_and_recompute_now_explains(tmp_path):
    """A web process whose broker (Redis) is down: no page fails."""
    staff("olga", "admin")
    port = free_port()
    env = worker_env({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "ARENA_VAR_DIR": str(tmp_path / "var")})
    web = ChildProcess(
        [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
        tmp_path / "web.log", env,
    ).start(port=port)  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            login(http, "olga")
            page = http.get("/admin/dashboard/")
            assert page.status_code == 200, web.output()[-3000:]
            health = http.get("/admin/dashboard/health/")
            assert health.status_code == 200
            assert health.json()["broker"] == "unreachable" and health.json()["workers"] is None

            response = http.post(
                "/admin/ratings/recomputerun/add/",
                data={"ci": "sandwich", "rounds": "100", "csrfmiddlewaretoken": http.cookies["csrftoken"]},
            )
            assert response.status_code == 200, web.output()[-3000:]
            assert "The recompute was not queued" in response.text
            run = RecomputeRun.objects.get()
            assert run.status == "failed" and run.error.startswith("could not queue the task")
            assert http.get(f"/admin/ratings/recomputerun/{run.pk}/status/").json()["status"] == "failed"
    finally:
        web.stop()
