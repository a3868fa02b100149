"""The staff Imports page over HTTP: admins only, CSRF, real imports followed to their result, rejected rows with
their line numbers, and files refused (too large, not UTF-8, empty, wrong header) with nothing imported."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.config import get_settings
from loyalty.ledger.verify import verify
from loyalty.models import Customer, CustomerIdentity, LedgerEntry, MemberBalance, Transaction
from loyalty.models.imports import ImportRun
from loyalty.web import tasks
from loyalty.web.staff import imports as imports_view
from tests.web.conftest import client_login
from tests.web.helpers import ADMIN, MANAGER, Desk, make_desk

CUSTOMERS = ("phone,name,email\n"
             "0912000001,Trần Văn An,an@example.vn\n"
             "0912000002,Lê Thị Bình,\n")
TRANSACTIONS = ("transaction_id,store_id,customer,occurred_at,amount\n"
                "W1,HN01,0912000001,2026-11-01T10:00:00+07:00,250000\n"
                "W2,HN01,0913999999,2026-11-01T11:00:00+07:00,500000\n")
WITH_BAD_LINES = ("transaction_id,store_id,customer,occurred_at,amount\n"
                  "B1,HN01,0912000001,2026-11-02T10:00:00+07:00,250000\n"   # line 2: fine
                  "B2,HN01,0912000001,yesterday,100000\n"                    # line 3: bad time
                  "B3,NOPE,0912000001,2026-11-02T10:00:00+07:00,100000\n"   # line 4: unknown store
                  "B4,HN01,0912000001,2026-11-02T11:00:00+07:00,12.5\n")    # line 5: not whole


@pytest.fixture
def desk(session: Session) -> Iterator[Desk]:
    tasks.clear()
    yield make_desk(session)
    tasks.clear()


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("LOYALTY_IMPORT_MAX_BYTES", "1000")
    get_settings.cache_clear()
    yield 1000
    get_settings.cache_clear()


def upload(client: TestClient, token: str | None, kind: str, content: str | bytes, *, name: str = "file.csv",
           create_customers: bool = False) -> httpx.Response:
    data = {"kind": kind}
    if token is not None:
        data["csrf_token"] = token
    if create_customers:
        data["create_customers"] = "on"
    body = content.encode() if isinstance(content, str) else content
    return client.post("/staff/imports", data=data, files={"file": (name, body, "text/csv")})


def imported(client: TestClient, token: str, kind: str, content: str, *, name: str = "file.csv",
             create_customers: bool = False) -> str:
    """Uploads, follows the run page's polling to the result; returns the result's HTML."""
    response = upload(client, token, kind, content, name=name, create_customers=create_customers)
    assert response.status_code == 303, response.text[:500]
    run_path = response.headers["location"]
    assert re.fullmatch(r"/staff/imports/\d+", run_path)
    page = client.get(run_path).text
    assert 'id="import-progress"' in page or 'id="import-result"' in page
    deadline = time.monotonic() + 60
    while True:
        status = client.get(run_path + "/status").text
        if 'id="import-result"' in status:
            return status
        assert 'role="progressbar"' in status and f'hx-get="{run_path}/status"' in status, status[:500]
        assert time.monotonic() < deadline, "the import did not finish"
        time.sleep(0.2)


def slowed(monkeypatch: pytest.MonkeyPatch, batch_size: int = 20, pause: float = 0.3) -> None:
    """Small batches with a pause after each, so the progress can be seen between them."""
    real = imports_view.run_recorded

    def slow(*args: Any, on_rows: Any = None, **kwargs: Any) -> Any:
        def paced(done: int, total: int) -> None:
            on_rows(done, total)
            time.sleep(pause)
        return real(*args, batch_size=batch_size, on_rows=paced, **kwargs)

    monkeypatch.setattr(imports_view, "run_recorded", slow)


def many_customers(n: int) -> str:
    return "phone,name\n" + "".join(f"09130{i:05d},Khách {i}\n" for i in range(n))


def figure(html: str, name: str) -> int:
    found = re.search(rf'id="{name}">([\d,]+)<', html)
    assert found, f"no {name} in {html[:800]}"
    return int(found.group(1).replace(",", ""))


def count(session: Session, model: type) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(model)) or 0


def available(session: Session, phone: str) -> int:
    session.rollback()
    return session.scalar(select(MemberBalance.available)
                          .join(CustomerIdentity, CustomerIdentity.customer_id == MemberBalance.customer_id)
                          .where(CustomerIdentity.kind == "phone", CustomerIdentity.value.like(f"%{phone[1:]}"))) or 0


def test_only_admins_have_the_page(web_client: TestClient, session: Session, desk: Desk) -> None:
    token = client_login(web_client, MANAGER)
    assert 'href="/staff/imports"' not in web_client.get("/staff/").text
    assert web_client.get("/staff/imports").status_code == 403
    refused = upload(web_client, token, "customers", CUSTOMERS)
    assert refused.status_code == 403
    assert count(session, ImportRun) == 0 and count(session, Customer) == 1
    web_client.cookies.clear()
    client_login(web_client, ADMIN)
    assert 'href="/staff/imports"' in web_client.get("/staff/").text
    page = web_client.get("/staff/imports")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    assert 'name="create_customers"' in page.text and "No imports yet" in page.text


def test_an_upload_without_the_csrf_token_is_refused(web_client: TestClient, session: Session, desk: Desk) -> None:
    client_login(web_client, ADMIN)
    refused = upload(web_client, None, "customers", CUSTOMERS)
    assert refused.status_code == 403
    assert count(session, ImportRun) == 0 and count(session, Customer) == 1


def test_customers_then_transactions_through_the_page(web_client: TestClient, session: Session,
                                                      desk: Desk) -> None:
    token = client_login(web_client, ADMIN)
    result = imported(web_client, token, "customers", CUSTOMERS, name="khach.csv")
    assert (figure(result, "imported"), figure(result, "skipped"), figure(result, "rejected")) == (2, 0, 0)
    assert count(session, Customer) == 3
    entries = count(session, LedgerEntry)
    result = imported(web_client, token, "transactions", TRANSACTIONS, name="ban-hang.csv", create_customers=True)
    assert (figure(result, "imported"), figure(result, "rejected"), figure(result, "created")) == (2, 0, 1)
    assert count(session, Transaction) == 1 + 2 and count(session, Customer) == 4
    assert count(session, LedgerEntry) == entries + 2
    assert available(session, "0912000001") == 20  # 250,000 at a retail store, as through the API
    assert figure(result, "points") == available(session, "0912000001") + available(session, "0913999999")
    again = imported(web_client, token, "transactions", TRANSACTIONS, name="ban-hang.csv", create_customers=True)
    assert (figure(again, "imported"), figure(again, "skipped")) == (0, 2)
    assert count(session, LedgerEntry) == entries + 2
    session.rollback()
    assert all(check.ok for check in verify(session))
    history = web_client.get("/staff/imports").text
    assert history.count("<tr data-run=") == 3 and "ban-hang.csv" in history and "khach.csv" in history
    session.rollback()
    runs = session.scalars(select(ImportRun).order_by(ImportRun.id)).all()
    assert [(r.kind, r.status, r.imported, r.started_by.split(":")[0]) for r in runs] == [
        ("customers", "done", 2, "staff"), ("transactions", "done", 2, "staff"), ("transactions", "done", 0, "staff")]


def test_bad_lines_are_shown_with_their_line_numbers_and_downloadable(web_client: TestClient, session: Session,
                                                                      desk: Desk) -> None:
    token = client_login(web_client, ADMIN)
    imported(web_client, token, "customers", CUSTOMERS)
    result = imported(web_client, token, "transactions", WITH_BAD_LINES)
    assert (figure(result, "imported"), figure(result, "rejected")) == (1, 3)
    shown = re.findall(r'<tr data-line="(\d+)"><td class="num">\d+</td><td>([^<]*)</td>', result)
    assert [int(line) for line, _ in shown] == [3, 4, 5]
    assert "ISO 8601" in shown[0][1] and "NOPE" in shown[1][1] and "whole number" in shown[2][1]
    link = re.search(r'href="(/staff/imports/\d+/rejected\.csv)"', result)
    assert link
    download = web_client.get(link.group(1))
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == ["line", "reason", "transaction_id", "store_id", "customer", "occurred_at", "amount"]
    assert [(r[0], r[2], r[3]) for r in rows[1:]] == [("3", "B2", "HN01"), ("4", "B3", "NOPE"), ("5", "B4", "HN01")]
    assert rows[1][1] == shown[0][1].replace("&#39;", "'")
    session.rollback()
    assert all(check.ok for check in verify(session))


def test_a_file_over_the_limit_is_refused_with_nothing_imported(web_client: TestClient, session: Session,
                                                                desk: Desk, small_limit: int) -> None:
    token = client_login(web_client, ADMIN)
    rows = "".join(f"09120{i:05d},Khách {i}\n" for i in range(60))
    assert small_limit < len(rows) < small_limit + 10_000  # the body passes, the file is over by itself
    over = upload(web_client, token, "customers", "phone,name\n" + rows)
    assert over.status_code == 413
    assert "larger than the 1.0 kB" in over.text and 'id="upload"' in over.text
    huge = upload(web_client, token, "customers", "phone,name\n" + rows * 200)  # refused by its Content-Length
    assert huge.status_code == 413 and "LOYALTY_IMPORT_MAX_BYTES" in huge.text and 'id="upload"' not in huge.text
    assert count(session, ImportRun) == 0 and count(session, Customer) == 1


@pytest.mark.parametrize(("content", "message"), [
    (b"phone,name\n0912000001,Tr\xe1n\n", "line 2: the file is not UTF-8"),
    (b"", "the file is empty"),
    (b"telephone,name\n0912000001,An\n", "unknown column(s) telephone"),
    (b"phone,name\n", "a header but no rows"),
])
def test_unreadable_files_are_refused_with_nothing_imported(web_client: TestClient, session: Session, desk: Desk,
                                                           content: bytes, message: str) -> None:
    token = client_login(web_client, ADMIN)
    refused = upload(web_client, token, "customers", content)
    assert refused.status_code == 422
    assert message in refused.text.replace("&#39;", "'"), refused.text[:2000]
    assert count(session, ImportRun) == 0 and count(session, Customer) == 1


def test_a_transactions_file_needs_its_columns(web_client: TestClient, session: Session, desk: Desk) -> None:
    token = client_login(web_client, ADMIN)
    refused = upload(web_client, token, "transactions", CUSTOMERS)
    assert refused.status_code == 422 and "the header lacks transaction_id" in refused.text
    assert count(session, ImportRun) == 0 and count(session, Transaction) == 1


def test_the_page_shows_rows_done_rate_and_time_left_while_it_runs(
    web_client: TestClient, session: Session, desk: Desk, monkeypatch: pytest.MonkeyPatch,
) -> None:
    slowed(monkeypatch)
    token = client_login(web_client, ADMIN)
    response = upload(web_client, token, "customers", many_customers(100))
    run_path = response.headers["location"]
    deadline = time.monotonic() + 60
    while 'id="rows-done"' not in (status := web_client.get(run_path + "/status").text):
        assert 'id="import-result"' not in status, "finished before any progress was seen"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    done = int(re.search(r'id="rows-done">([\d,]+)<', status).group(1))  # type: ignore[union-attr]
    assert 20 <= done < 100 and re.search(r'id="rows-total">100<', status)
    assert re.search(r'id="rate">[\d,]+<', status) and re.search(r'id="eta">about \d+ (s|min)', status)
    assert 'aria-valuenow="' in status and "every 1s" in status
    result = imported_result(web_client, run_path)
    assert figure(result, "imported") == 100 and count(session, Customer) == 101


def imported_result(client: TestClient, run_path: str) -> str:
    deadline = time.monotonic() + 60
    while 'id="import-result"' not in (status := client.get(run_path + "/status").text):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return status


def test_a_body_without_content_length_is_cut_off_at_the_limit(web_client: TestClient, session: Session,
                                                               desk: Desk, small_limit: int) -> None:
    token = client_login(web_client, ADMIN)
    boundary = "b0undary"

    def body() -> Iterator[bytes]:
        for name, value in (("csrf_token", token), ("kind", "customers")):
            yield f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
               "Content-Type: text/csv\r\n\r\nphone,name\n").encode()
        for _ in range(100):
            yield "".join(f"09140{i:05d},Khách\n" for i in range(100)).encode()
        yield f"\r\n--{boundary}--\r\n".encode()

    response = web_client.post("/staff/imports", content=body(),
                               headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413 and "LOYALTY_IMPORT_MAX_BYTES" in response.text
    assert 'id="upload"' not in response.text  # refused while the body arrived, not after spooling all of it
    assert count(session, ImportRun) == 0 and count(session, Customer) == 1
