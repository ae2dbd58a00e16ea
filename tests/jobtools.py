"""Waiting for background jobs in tests: through the job's own JSON endpoint, as a page
that polls would."""

from __future__ import annotations

import time

#: A job in a test is small; a minute means the worker is not running it.
TIMEOUT = 60.0


def wait_for_job(client, job_id: int, timeout: float = TIMEOUT) -> dict:
    """Poll GET /staff/jobs/<id>.json until the job is done or failed; its JSON."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/staff/jobs/{job_id}.json")
        assert response.status_code == 200, response.status_code
        view = response.get_json()
        if view["status"] in ("done", "failed"):
            return view
        assert time.monotonic() < deadline, f"job {job_id} still {view['status']} after {timeout}s"
        time.sleep(0.05)


def job_id_of(response) -> int:
    """The job a 303 from a page that started one leads to."""
    assert response.status_code == 303, response.status_code
    location = response.headers["Location"]
    assert "/staff/jobs/" in location, location
    return int(location.rstrip("/").rsplit("/", 1)[1])


def finished_job_page(client, response):
    """Follow a page's 303 to its job, wait for the job to end, and GET the job's page.
    The page response carries the job's JSON as `.job`."""
    job_id = job_id_of(response)
    view = wait_for_job(client, job_id)
    page = client.get(f"/staff/jobs/{job_id}")
    assert page.status_code == 200, page.status_code
    page.job = view
    return page
